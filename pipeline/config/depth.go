package config

import (
	"fmt"
	"strings"

	"cuelang.org/go/cue/scanner"
	"cuelang.org/go/cue/token"
)

// depthError is a file nested deeper than the limit, at the token that
// went past it.
type depthError struct {
	Line, Col int
	Limit     int
}

func (e *depthError) Error() string {
	return fmt.Sprintf("nested more than %d levels deep (braces, brackets, parentheses and chained labels such as a: b: c: count one level each); flatten the structure", e.Limit)
}

// checkDepth scans src, a CUE file, and returns a *depthError when it nests
// deeper than max. It runs before CUE parses the file, and with no
// recursion of its own, because CUE's parser and loader recurse once per
// level and a long enough chain (a: a: a: … 1) crashes the Go runtime
// with a stack overflow that no recover can catch. Chained labels count
// because CUE's own nesting limit covers only brackets.
//
// A field's labels deepen the nesting until the comma (written or
// implied by a newline) that ends the field; a bracket restores, when it
// closes, the depth it was opened at. A syntax error is left to the parser,
// which reports it better.
func checkDepth(filename string, src []byte, max int) error {
	var s scanner.Scanner
	f := token.NewFile(filename, -1, len(src))
	s.Init(f, src, nil, 0)
	type frame struct {
		base   int  // depth before the bracket
		interp bool // a \( of a string interpolation
	}
	var stack []frame
	depth := 0
	nextInterp := false // the next '(' opens an interpolation
	for {
		pos, tok, lit := s.Scan()
		switch tok {
		case token.EOF:
			return nil
		case token.LBRACE, token.LBRACK, token.LPAREN:
			stack = append(stack, frame{base: depth, interp: tok == token.LPAREN && nextInterp})
			nextInterp = false
			depth++
		case token.RBRACE, token.RBRACK, token.RPAREN:
			if len(stack) == 0 {
				continue // unbalanced: the parser says so
			}
			top := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			depth = top.base
			if tok == token.RPAREN && top.interp {
				// The rest of the string comes back as one segment, which
				// ends with '(' when another interpolation follows.
				nextInterp = strings.HasSuffix(s.ResumeInterpolation(), "(")
			}
			continue
		case token.INTERPOLATION:
			nextInterp = strings.HasSuffix(lit, "(")
			continue
		case token.COMMA:
			depth = 0
			if len(stack) > 0 {
				depth = stack[len(stack)-1].base + 1
			}
			continue
		case token.COLON:
			depth++
		default:
			continue
		}
		if depth > max {
			p := f.Position(pos)
			return &depthError{Line: p.Line, Col: p.Column, Limit: max}
		}
	}
}
