package wizard

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	yamlv2 "go.yaml.in/yaml/v2"
)

// orderedYAML marshals v as YAML with its fields in the order the Go type
// declares them (name, version, roles, artifact, ... as in the examples),
// where sigs.k8s.io/yaml sorts keys alphabetically (artifact before name).
// It goes through encoding/json, as sigs.k8s.io/yaml does, so the field
// names, omitempty and custom marshallers are exactly the same; a test
// checks that both forms parse back to the same manifest.
func orderedYAML(v any) ([]byte, error) {
	j, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber()
	tree, err := orderedValue(dec)
	if err != nil {
		return nil, err
	}
	return yamlv2.Marshal(tree)
}

// orderedValue reads one JSON value: objects become yaml.MapSlice (keys in
// document order), arrays []any, numbers int64 or float64.
func orderedValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			out := yamlv2.MapSlice{}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return nil, err
				}
				v, err := orderedValue(dec)
				if err != nil {
					return nil, err
				}
				out = append(out, yamlv2.MapItem{Key: k, Value: v})
			}
			_, err := dec.Token() // '}'
			return out, err
		case '[':
			out := []any{}
			for dec.More() {
				v, err := orderedValue(dec)
				if err != nil {
					return nil, err
				}
				out = append(out, v)
			}
			_, err := dec.Token() // ']'
			return out, err
		}
		return nil, fmt.Errorf("unexpected %v", t)
	case json.Number:
		if i, err := strconv.ParseInt(t.String(), 10, 64); err == nil {
			return i, nil
		}
		return t.Float64()
	default: // string, bool, nil
		return t, nil
	}
}
