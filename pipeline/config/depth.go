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
	// Chain is set when an expression chained too many operators.
	Chain bool
}

func (e *depthError) Error() string {
	if e.Chain {
		return fmt.Sprintf("an expression chains more than %d operators or selectors (a + b + …, a.b.c.…); split it into fields", e.Limit)
	}
	return fmt.Sprintf("nested more than %d levels deep (braces, brackets, parentheses and chained labels such as a: b: c: count one level each); flatten the structure", e.Limit)
}

// chainFactor is how many more operators one expression may chain than
// levels a file may nest: CUE's own limit on brackets is 10,000, and long
// disjunctions of values are ordinary.
const chainFactor = 10

// checkDepth scans src, a CUE file, and returns a *depthError when it nests
// deeper than max, or chains more than max*chainFactor operators in one
// expression. It runs before CUE parses the file, and with no recursion of
// its own, because CUE's parser and evaluator recurse once per level, and a
// long enough chain (a: a: a: … 1, or 1 + 1 + … 1) crashes the Go runtime
// with a stack overflow that no recover can catch. Chains count because
// CUE's own nesting limit covers only brackets.
//
// Labels and operators deepen the nesting until the comma (written, or
// implied by a newline) that ends the field or element; a bracket
// restores, when it closes, the depth it was opened at. A syntax error is
// left to the parser, which reports it better.
func checkDepth(filename string, src []byte, max int) error {
	if err := checkRawDepth(src, max*rawFactor); err != nil {
		return err
	}
	maxChain := max * chainFactor
	var s scanner.Scanner
	f := token.NewFile(filename, -1, len(src))
	s.Init(f, src, nil, 0)
	type frame struct {
		depth, chain int  // before the bracket
		interp       bool // a \( of a string interpolation
	}
	var stack []frame
	depth, chain := 0, 0
	nextInterp := false // the next '(' opens an interpolation
	fail := func(pos token.Pos, limit int, isChain bool) error {
		p := f.Position(pos)
		return &depthError{Line: p.Line, Col: p.Column, Limit: limit, Chain: isChain}
	}
	for {
		pos, tok, lit := s.Scan()
		switch {
		case tok == token.EOF:
			return nil
		case tok == token.LBRACE || tok == token.LBRACK || tok == token.LPAREN:
			stack = append(stack, frame{depth: depth, chain: chain, interp: tok == token.LPAREN && nextInterp})
			nextInterp = false
			depth, chain = depth+1, 0
		case tok == token.RBRACE || tok == token.RBRACK || tok == token.RPAREN:
			if len(stack) == 0 {
				continue // unbalanced: the parser says so
			}
			top := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			depth, chain = top.depth, top.chain
			if tok == token.RPAREN && top.interp {
				// The rest of the string comes back as one segment, which
				// ends with '(' when another interpolation follows.
				nextInterp = strings.HasSuffix(s.ResumeInterpolation(), "(")
			}
			continue
		case tok == token.INTERPOLATION:
			nextInterp = strings.HasSuffix(lit, "(")
			continue
		case tok == token.COMMA:
			depth, chain = 0, 0
			if len(stack) > 0 {
				depth = stack[len(stack)-1].depth + 1
			}
			continue
		case tok == token.COLON:
			depth++
		case tok == token.PERIOD || tok.Precedence() > 0:
			if chain++; chain > maxChain {
				return fail(pos, maxChain, true)
			}
			continue
		default:
			continue
		}
		if depth > max {
			return fail(pos, max, false)
		}
	}
}

// rawFactor loosens the bound of checkRawDepth, which counts brackets in
// strings and comments too, far beyond what any real file reaches.
const rawFactor = 100

// checkRawDepth bounds the nesting of brackets as bytes, before CUE's
// scanner runs: the scanner returns an attribute (@x(…)) as one token and
// recurses once per bracket inside it, so @x((((…)))) eight million deep
// overflows the stack in the scanner itself.
func checkRawDepth(src []byte, max int) error {
	depth, line, col := 0, 1, 0
	for _, c := range src {
		col++
		switch c {
		case '\n':
			line, col = line+1, 0
		case '(', '[', '{':
			if depth++; depth > max {
				return &depthError{Line: line, Col: col, Limit: max}
			}
		case ')', ']', '}':
			if depth > 0 {
				depth--
			}
		}
	}
	return nil
}
