package manifests

import (
	"encoding/json"
	"reflect"
)

// SchemaID names the schema `drover schema` prints.
const SchemaID = "https://drover-project.github.io/schema/drover-v1.json"

// Schema is a JSON Schema (draft-07, which yaml-language-server and most
// editors read) of a manifest, generated from the Go types and fieldDocs:
// editors complete and check manifests with it. It is looser than
// Validate in what it cannot say (references between fields, templates)
// and as strict on shape: an unknown field is refused.
func Schema() ([]byte, error) {
	defs := map[string]any{}
	for _, t := range docTypes() {
		defs[t.Name()] = objectSchema(t)
	}
	root := map[string]any{
		"$schema":     "http://json-schema.org/draft-07/schema#",
		"$id":         SchemaID,
		"title":       "drover cluster manifest (" + APIVersion + ")",
		"allOf":       []any{map[string]any{"$ref": "#/definitions/Cluster"}},
		"definitions": defs,
	}
	b, err := json.MarshalIndent(root, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func objectSchema(t reflect.Type) map[string]any {
	props := map[string]any{}
	required := []string{}
	for _, f := range docFields(t) {
		s := valueSchema(f.Type)
		d := f.Doc
		if d.Description != "" {
			s["description"] = d.Description
		}
		if d.Default != "" {
			s["markdownDescription"] = d.Description + "\n\nDefault: `" + d.Default + "`"
		}
		if len(d.Enum) > 0 {
			s["enum"] = d.Enum
		}
		if d.Pattern != "" {
			s["pattern"] = d.Pattern
		}
		if d.Required {
			required = append(required, f.Name)
		}
		props[f.Name] = s
	}
	s := map[string]any{
		"type":                 "object",
		"additionalProperties": false,
		"properties":           props,
	}
	if len(required) > 0 {
		s["required"] = required
	}
	return s
}

func valueSchema(t reflect.Type) map[string]any {
	switch {
	case t == durationType:
		return map[string]any{"type": "string"}
	case t == intOrPercentType:
		return map[string]any{"oneOf": []any{
			map[string]any{"type": "integer", "minimum": 0},
			map[string]any{"type": "string", "pattern": `^[0-9]+%?$`},
		}}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return valueSchema(t.Elem())
	case reflect.Slice:
		return map[string]any{"type": "array", "items": valueSchema(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": valueSchema(t.Elem())}
	case reflect.Struct:
		return map[string]any{"$ref": "#/definitions/" + t.Name()}
	case reflect.Int:
		return map[string]any{"type": "integer"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	default:
		return map[string]any{"type": "string"}
	}
}
