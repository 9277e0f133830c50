// Package safetext makes strings that came from a node safe to print on
// an operator's terminal. A node's stderr, a receipt's version or a
// unit's state is text someone else controls: an ESC ]0;…BEL sets the
// terminal's title, ESC [2J clears the screen (and can paint "all nodes
// converged" over the real output), a CR overwrites the line, a newline
// forges a row, and bidirectional overrides reorder what is shown. Every
// text printer of node-sourced strings (plan, probe, status, apply) runs
// them through Line or Text; JSON output needs nothing (it escapes).
package safetext

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Line escapes every control character, newline and tab included, so the
// string stays on its line and in its column.
func Line(s string) string { return escape(s, false) }

// Text escapes every control character but newline and tab, for
// multi-line text such as a load error (whose lines are drover's).
func Text(s string) string { return escape(s, true) }

func escape(s string, keepLines bool) string {
	if !needsEscape(s, keepLines) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unsafe(r, keepLines):
			if r < 0x80 {
				fmt.Fprintf(&b, `\x%02x`, r)
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

func needsEscape(s string, keepLines bool) bool {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || unsafe(r, keepLines) {
			return true
		}
		i += size
	}
	return false
}

// unsafe: C0 and C1 controls, DEL, and the invisible marks that change
// the order or direction text is shown in.
func unsafe(r rune, keepLines bool) bool {
	switch {
	case keepLines && (r == '\n' || r == '\t'):
		return false
	case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f:
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}
