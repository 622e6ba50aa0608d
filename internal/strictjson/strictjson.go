// Package strictjson decodes the JSON documents release reads back (its
// manifests, step specs, journals) strictly: a field this release does not
// know, or anything after the document, means the writer and the reader
// disagree about the format, and guessing would act on the wrong data.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
)

// ErrTrailingData is returned when something follows the JSON value.
var ErrTrailingData = errors.New("unexpected data after the JSON object")

// BOM is the UTF-8 byte order mark. Windows PowerShell 5.1 writes one
// before every UTF-8 file (Out-File -Encoding UTF8), so K2s's manifests,
// and release's own of profile k2s, start with it.
const BOM = "\uFEFF"

// StripBOM drops a leading byte order mark; JSON readers may ignore one
// (RFC 8259, section 8.1), and release's all do.
func StripBOM(data []byte) []byte {
	return bytes.TrimPrefix(data, []byte(BOM))
}

// Unmarshal decodes data into v, refusing unknown fields and trailing data.
// A leading byte order mark is ignored.
func Unmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(StripBOM(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return ErrTrailingData
	}
	return nil
}
