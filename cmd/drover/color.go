package main

import (
	"io"
	"os"
	"strings"
)

// ANSI colours for plan and diff lines.
const (
	ansiReset  = "\033[0m"
	ansiRed    = "\033[31m"
	ansiGreen  = "\033[32m"
	ansiYellow = "\033[33m"
	ansiCyan   = "\033[36m"
)

// useColor reports whether text for w gets colour: only on a terminal,
// and never with NO_COLOR set (https://no-color.org) or TERM=dumb, so
// output piped to a file or another program stays plain.
func useColor(w io.Writer) bool {
	f, ok := w.(*os.File)
	return colorAllowed(ok && isTerminal(f), os.Getenv)
}

func colorAllowed(terminal bool, getenv func(string) string) bool {
	return terminal && getenv("NO_COLOR") == "" && getenv("TERM") != "dumb"
}

// colorizePlan colours the lines of a text plan by their marker: "+"
// (install, added line) green, "-" (remove, deleted line) red, "~"
// (change) yellow, "!" (unknown node) red, "@@" (diff hunk) cyan.
func colorizePlan(text string) string {
	lines := strings.SplitAfter(text, "\n")
	var b strings.Builder
	for _, line := range lines {
		trimmed := strings.TrimLeft(line, " ")
		var c string
		switch {
		case strings.HasPrefix(trimmed, "@@"):
			c = ansiCyan
		case strings.HasPrefix(trimmed, "+"):
			c = ansiGreen
		case strings.HasPrefix(trimmed, "-"):
			c = ansiRed
		case strings.HasPrefix(trimmed, "~ "):
			c = ansiYellow
		case strings.HasPrefix(trimmed, "! "):
			c = ansiRed
		}
		if c == "" || strings.TrimSpace(line) == "" {
			b.WriteString(line)
			continue
		}
		body, nl := strings.CutSuffix(line, "\n")
		b.WriteString(c + body + ansiReset)
		if nl {
			b.WriteString("\n")
		}
	}
	return b.String()
}
