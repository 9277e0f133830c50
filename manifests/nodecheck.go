package manifests

import (
	"errors"
	"strings"
)

// Checks the probe and the unit writer make of what the manifest gives
// them. They live here so that Validate runs them too, with field paths:
// a manifest `validate` accepts must not fail later on a node.

// Errors of CheckCommandLine; the caller says which field.
var (
	ErrCommandEmpty     = errors.New("is empty")
	ErrCommandNewline   = errors.New("must be a single line")
	ErrCommandControl   = errors.New("must not contain control characters")
	ErrCommandQuote     = errors.New("has an unbalanced quote")
	ErrCommandBackslash = errors.New("ends with a backslash, which would join the next line")
)

// CheckCommandLine refuses a rendered service.exec line that would not
// be one systemd command line: empty, several lines, control
// characters, a trailing backslash (a line continuation in unit files)
// or an unbalanced quote.
func CheckCommandLine(s string) error {
	if s == "" {
		return ErrCommandEmpty
	}
	if strings.ContainsAny(s, "\n\r") {
		return ErrCommandNewline
	}
	if strings.ContainsFunc(s, func(r rune) bool { return (r < 0x20 && r != '\t') || r == 0x7f }) {
		return ErrCommandControl
	}
	// Even an escaped final backslash reads as a continuation to some
	// unit parsers; nobody needs one, so refuse it outright.
	if strings.HasSuffix(s, `\`) {
		return ErrCommandBackslash
	}
	var quote byte
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			i++
			if i == len(s) {
				return ErrCommandBackslash
			}
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		}
	}
	if quote != 0 {
		return ErrCommandQuote
	}
	return nil
}

// GoodNodePath accepts absolute paths without control characters or
// backslashes: the probe reads files back with sha256sum, which escapes
// those in its output and would break its one-line-per-file protocol.
func GoodNodePath(p string) bool {
	if !strings.HasPrefix(p, "/") {
		return false
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return false
		}
	}
	return true
}

// GoodExecArg accepts what an exec check's argument may hold: anything
// but NUL, which no argument passed to a program can contain.
func GoodExecArg(a string) bool { return strings.IndexByte(a, 0) < 0 }
