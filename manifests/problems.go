package manifests

import (
	"fmt"
	"strings"
)

// Severity of a validation problem.
type Severity int

const (
	SeverityError Severity = iota
	SeverityWarning
)

// Problem is one thing wrong with a manifest, at a field path such as
// spec.components[2].artifact.sha256.
type Problem struct {
	Path     string
	Message  string
	Severity Severity
}

func (p Problem) String() string {
	if p.Severity == SeverityWarning {
		return fmt.Sprintf("warning: %s: %s", p.Path, p.Message)
	}
	return fmt.Sprintf("%s: %s", p.Path, p.Message)
}

// Problems is every problem found, in field order.
type Problems []Problem

// HasErrors reports whether any problem blocks the manifest.
func (ps Problems) HasErrors() bool {
	for _, p := range ps {
		if p.Severity == SeverityError {
			return true
		}
	}
	return false
}

// Warnings returns only the non-blocking problems.
func (ps Problems) Warnings() Problems {
	var out Problems
	for _, p := range ps {
		if p.Severity == SeverityWarning {
			out = append(out, p)
		}
	}
	return out
}

// InvalidError is a manifest rejected by validation; it lists every problem.
type InvalidError struct {
	Path     string
	Problems Problems
}

func (e *InvalidError) Error() string {
	var b strings.Builder
	n := 0
	for _, p := range e.Problems {
		if p.Severity == SeverityError {
			n++
		}
	}
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	fmt.Fprintf(&b, "%d problem(s):", n)
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}
