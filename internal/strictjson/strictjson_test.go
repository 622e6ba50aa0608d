package strictjson

import (
	"errors"
	"strings"
	"testing"
)

type doc struct {
	A int    `json:"a"`
	B string `json:"b"`
}

func TestUnmarshal(t *testing.T) {
	var d doc
	if err := Unmarshal([]byte(` {"a": 1, "b": "x"} `+"\n"), &d); err != nil || d != (doc{1, "x"}) {
		t.Fatalf("valid document: %+v, %v", d, err)
	}
	for _, c := range []struct{ in, want string }{
		{`{"a": 1, "c": 2}`, `unknown field "c"`},
		{`{"a": 1} {"a": 2}`, ErrTrailingData.Error()},
		{`{"a": 1} x`, ErrTrailingData.Error()},
		{`{"a": "1"}`, "cannot unmarshal string"},
		{`{"a": 1`, "unexpected EOF"},
		{``, "EOF"},
	} {
		err := Unmarshal([]byte(c.in), &doc{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want an error with %q", c.in, err, c.want)
		}
	}
	if err := Unmarshal([]byte(`{} []`), &doc{}); !errors.Is(err, ErrTrailingData) {
		t.Errorf("trailing array: %v is not ErrTrailingData", err)
	}
}

// TestByteOrderMark: a leading BOM (Windows PowerShell 5.1's UTF-8) is
// ignored; one anywhere else is data, and refused.
func TestByteOrderMark(t *testing.T) {
	var d doc
	if err := Unmarshal([]byte(BOM+`{"a": 1, "b": "ä"}`), &d); err != nil || d != (doc{1, "ä"}) {
		t.Fatalf("with a BOM: %+v, %v", d, err)
	}
	if err := Unmarshal([]byte(`{"a": 1}`+BOM), &doc{}); err == nil {
		t.Error("a BOM after the document was accepted")
	}
	if err := Unmarshal([]byte(BOM+BOM+`{"a": 1}`), &doc{}); err == nil {
		t.Error("two BOMs were accepted")
	}
	if got := string(StripBOM([]byte(BOM + "x"))); got != "x" {
		t.Errorf("StripBOM = %q", got)
	}
}
