package manifests

import (
	"encoding/json"
	"reflect"
	"strconv"
)

// decodeDoc fills into (a pointer) from doc, the document checkShape
// decoded and inspect found no problem in, the way sigs.k8s.io/yaml's
// strict decoder would from the same bytes. The YAML is then read once:
// sigs.k8s.io/yaml parses the text again, converts the tree to JSON and
// decodes that, which was half of a 10,000-node load. It answers false
// for anything it was not written for (a key of an odd kind, an
// unmarshaler's error, a number in a field the JSON conversion would not
// turn into text): the caller then decodes with sigs.k8s.io/yaml, whose
// answer, or error, is the reference (TestDecodeDocMatchesSigsYAML).
func decodeDoc(doc any, into any) bool {
	return decodeValue(doc, reflect.ValueOf(into).Elem(), false)
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// decodeValue decodes v into rv as encoding/json decodes its JSON form.
// promoted is set for a field of an embedded struct: sigs.k8s.io/yaml
// guides the conversion of its scalars by the embedded struct rather than
// the field, so a number there stays a number (and the JSON decode
// refuses it).
func decodeValue(v any, rv reflect.Value, promoted bool) bool {
	if rv.Kind() == reflect.Pointer {
		if v == nil {
			rv.SetZero() // null: nil
			return true
		}
		p := reflect.New(rv.Type().Elem())
		if !decodeValue(v, p.Elem(), promoted) {
			return false
		}
		rv.Set(p)
		return true
	}
	if rv.CanAddr() && rv.Addr().Type().Implements(unmarshalerType) {
		// The type reads its own JSON (Duration, IntOrPercent), null too.
		j, ok := jsonable(v)
		if !ok {
			return false
		}
		b, err := json.Marshal(j)
		if err != nil {
			return false
		}
		return rv.Addr().Interface().(json.Unmarshaler).UnmarshalJSON(b) == nil
	}
	if v == nil {
		return true // null leaves a value as it is and a map or list nil
	}
	switch rv.Kind() {
	case reflect.Struct:
		return decodeStruct(v, rv)
	case reflect.Slice:
		s, ok := v.([]any)
		if !ok {
			return false
		}
		out := reflect.MakeSlice(rv.Type(), len(s), len(s))
		for i, e := range s {
			if !decodeValue(e, out.Index(i), false) {
				return false
			}
		}
		rv.Set(out)
		return true
	case reflect.Map:
		m, ok := v.(map[any]any)
		if !ok || rv.Type().Key().Kind() != reflect.String {
			return false
		}
		out := reflect.MakeMapWithSize(rv.Type(), len(m))
		for k, e := range m {
			key, ok := jsonKey(k)
			if !ok {
				return false
			}
			kv := reflect.ValueOf(key).Convert(rv.Type().Key())
			if out.MapIndex(kv).IsValid() {
				return false // 1 and "1": which one JSON keeps is not ours to guess
			}
			ev := reflect.New(rv.Type().Elem()).Elem()
			if !decodeValue(e, ev, false) {
				return false
			}
			out.SetMapIndex(kv, ev)
		}
		rv.Set(out)
		return true
	case reflect.String:
		switch t := v.(type) {
		case string:
			rv.SetString(t)
		case int:
			if promoted {
				return false
			}
			rv.SetString(strconv.Itoa(t))
		default:
			return false
		}
		return true
	case reflect.Int:
		n, ok := v.(int)
		if !ok {
			return false
		}
		rv.SetInt(int64(n))
		return true
	case reflect.Bool:
		b, ok := v.(bool)
		if !ok {
			return false
		}
		rv.SetBool(b)
		return true
	}
	return false
}

// decodeStruct decodes a mapping into a struct by the fields inspect
// knows; any other key was an inspect problem, so it is not ours.
func decodeStruct(v any, rv reflect.Value) bool {
	m, ok := v.(map[any]any)
	if !ok {
		return false
	}
	fs := fieldsOf(rv.Type())
	for k, e := range m {
		name, ok := k.(string)
		if !ok {
			return false
		}
		f, ok := fs.byName[name]
		if !ok {
			return false
		}
		if !decodeValue(e, rv.FieldByIndex(f.index), len(f.index) > 1) {
			return false
		}
	}
	return true
}

// jsonKey is a mapping key as the JSON conversion writes it.
func jsonKey(k any) (string, bool) {
	switch t := k.(type) {
	case string:
		return t, true
	case int:
		return strconv.Itoa(t), true
	}
	return "", false
}

// jsonable is v with its mappings' keys made text, for an unmarshaler.
func jsonable(v any) (any, bool) {
	switch t := v.(type) {
	case map[any]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			key, ok := jsonKey(k)
			if !ok {
				return nil, false
			}
			if _, dup := out[key]; dup {
				return nil, false
			}
			j, ok := jsonable(e)
			if !ok {
				return nil, false
			}
			out[key] = j
		}
		return out, true
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			j, ok := jsonable(e)
			if !ok {
				return nil, false
			}
			out[i] = j
		}
		return out, true
	}
	return v, true
}
