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

// Unmarshal decodes data into v, refusing unknown fields and trailing data.
func Unmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return ErrTrailingData
	}
	return nil
}
