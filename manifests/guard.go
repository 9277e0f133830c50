package manifests

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	yamlv2 "go.yaml.in/yaml/v2"
)

// Limits a manifest's shape must stay within. The YAML library bounds
// alias-driven decoding by ratio, but still lets a few large scalars be
// aliased hundreds of times, which sigs.k8s.io/yaml then re-encodes as
// JSON: gigabytes from a 4 MB file. checkShape measures the document as
// decoded, aliases expanded, and refuses it before that happens.
const (
	// MaxExpandedBytes bounds the text of a document with every alias
	// expanded: keys, scalars and a little per node.
	MaxExpandedBytes = 4 * MaxManifestBytes
	// MaxNesting bounds how deep mappings and sequences nest; a real
	// manifest needs fewer than ten levels.
	MaxNesting = 64
)

// Errors checkShape returns, for callers that want to tell them apart.
var (
	ErrNotText          = errors.New("not UTF-8 text")
	ErrTooManyDocuments = errors.New("more than one YAML document; a manifest is exactly one")
	ErrTooExpanded      = fmt.Errorf("expands to more than %d bytes once aliases are resolved", MaxExpandedBytes)
	ErrTooDeep          = fmt.Errorf("nested more than %d levels deep", MaxNesting)
)

// nodeOverhead is what each mapping, sequence or scalar costs the budget
// beyond its text, so millions of empty nodes are refused too.
const nodeOverhead = 8

// checkShape rejects what would make the real parse slow, huge or
// surprising: non-text bytes, several documents, excessive alias expansion
// and deep nesting. Syntax errors are left for the real parse to report.
// It returns the document decoded generically, for inspect.
func checkShape(data []byte) (any, error) {
	doc, _, err := readShape(data)
	return doc, err
}

// readShape is checkShape that also says whether the document repeats a
// key in a mapping (strict: the error strict decoding reports). The
// document is still returned then, with the last of each key.
func readShape(data []byte) (doc any, strict error, err error) {
	if !utf8.Valid(data) {
		return nil, nil, ErrNotText
	}
	dec := yamlv2.NewDecoder(bytes.NewReader(data))
	dec.SetStrict(true)
	var repeated *yamlv2.TypeError
	if err := dec.Decode(&doc); errors.As(err, &repeated) {
		strict = err // decoding into any, only a repeated key is one
	} else if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, nil
		}
		return nil, nil, err
	}
	budget := MaxExpandedBytes
	if err := measure(doc, 0, &budget); err != nil {
		return nil, nil, err
	}
	// Allow one empty trailing document: "---" at the end of a file.
	var next any
	err = dec.Decode(&next)
	if err == nil && next == nil {
		err = dec.Decode(&next)
	}
	if !errors.Is(err, io.EOF) {
		return nil, nil, ErrTooManyDocuments
	}
	return doc, strict, nil
}

// measure walks a decoded document, charging each node to budget.
func measure(v any, depth int, budget *int) error {
	if depth > MaxNesting {
		return ErrTooDeep
	}
	*budget -= nodeOverhead
	switch t := v.(type) {
	case map[any]any:
		for k, e := range t {
			if err := measure(k, depth+1, budget); err != nil {
				return err
			}
			if err := measure(e, depth+1, budget); err != nil {
				return err
			}
		}
	case []any:
		for _, e := range t {
			if err := measure(e, depth+1, budget); err != nil {
				return err
			}
		}
	case string:
		*budget -= len(t)
	}
	if *budget < 0 {
		return ErrTooExpanded
	}
	return nil
}
