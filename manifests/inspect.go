package manifests

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
)

// inspect walks a generically decoded document along the Go type it will
// be decoded into, before it is, and returns every problem with its field
// path: unknown fields (with a suggestion), values of the wrong kind, and
// scalars YAML 1.1 reads differently from how they look. The JSON decoder
// behind sigs.k8s.io/yaml would stop at the first of these with no path,
// or, for the last kind, not notice at all: `version: 1.10` becomes "1.1",
// `mode: 0644` (octal) becomes "420", `enabled: yes` becomes "true".
func inspect(doc any, t reflect.Type) Problems {
	var ps Problems
	walk(doc, t, "", &ps)
	return ps
}

func problem(ps *Problems, path, format string, args ...any) {
	if path == "" {
		path = "(document)"
	}
	*ps = append(*ps, Problem{Path: path, Message: fmt.Sprintf(format, args...), Severity: SeverityError})
}

// unmarshalerType is implemented by types that parse their own scalar
// (IntOrPercent, Duration); walk leaves their shape to them.
func isUnmarshaler(t reflect.Type) bool {
	return reflect.PointerTo(t).Implements(reflect.TypeFor[json.Unmarshaler]())
}

func walk(v any, t reflect.Type, path string, ps *Problems) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if v == nil {
		return // null: the zero value
	}
	switch {
	case t.Kind() == reflect.Struct && !isUnmarshaler(t):
		walkStruct(v, t, path, ps)
	case t.Kind() == reflect.Slice:
		s, ok := v.([]any)
		if !ok {
			problem(ps, path, "must be a list, not %s", kindOf(v))
			return
		}
		for i, e := range s {
			walk(e, t.Elem(), at(path, i), ps)
		}
	case t.Kind() == reflect.Map:
		m, ok := v.(map[any]any)
		if !ok {
			problem(ps, path, "must be a mapping, not %s", kindOf(v))
			return
		}
		for _, k := range sortedAnyKeys(m) {
			switch k.(type) {
			case bool, float64:
				problem(ps, join(path, fmt.Sprint(k)), "the key is a YAML %s, not text; quote it", strings.TrimPrefix(kindOf(k), "a "))
			}
			walk(m[k], t.Elem(), join(path, fmt.Sprint(k)), ps)
		}
	case t.Kind() == reflect.String:
		walkText(v, path, ps)
	case t.Kind() == reflect.Int:
		if _, ok := v.(int); !ok {
			problem(ps, path, "must be a whole number, not %s", kindOf(v))
		}
	case t.Kind() == reflect.Bool:
		if _, ok := v.(bool); !ok {
			problem(ps, path, "must be true or false, not %s", kindOf(v))
		}
	}
}

func walkStruct(v any, t reflect.Type, path string, ps *Problems) {
	m, ok := v.(map[any]any)
	if !ok {
		problem(ps, path, "must be a mapping, not %s", kindOf(v))
		return
	}
	fs := fieldsOf(t)
	for _, f := range fs.fields {
		e, ok := m[f.name]
		switch {
		case !ok:
		case f.textOrList:
			walkTextOrList(e, join(path, f.name), ps)
		default:
			walk(e, f.typ, join(path, f.name), ps)
		}
	}
	for _, k := range sortedAnyKeys(m) {
		key := fmt.Sprint(k)
		if fs.known[key] {
			continue
		}
		if near := closest(key, fs.names); near != "" {
			problem(ps, join(path, key), "unknown field (did you mean %s?)", near)
		} else {
			problem(ps, join(path, key), "unknown field")
		}
	}
}

// walkTextOrList checks a command given as one line or a list of arguments.
func walkTextOrList(v any, path string, ps *Problems) {
	list, ok := v.([]any)
	if !ok {
		walkText(v, path, ps)
		return
	}
	for i, e := range list {
		walkText(e, at(path, i), ps)
	}
}

// structFields are the fields of one struct type as walk checks them.
type structFields struct {
	fields []structField
	known  map[string]bool
	names  []string
	byName map[string]structField
}

type structField struct {
	name       string
	typ        reflect.Type
	textOrList bool  // a command given as one line or a list
	index      []int // for reflect.Value.FieldByIndex; longer than one when promoted
}

// fieldCache holds fieldsOf's answers, by type: a manifest of 10,000
// nodes walks the node type 10,000 times, and reading its tags each time
// was a tenth of the load.
var fieldCache sync.Map // reflect.Type -> *structFields

func fieldsOf(t reflect.Type) *structFields {
	if fs, ok := fieldCache.Load(t); ok {
		return fs.(*structFields)
	}
	fs := &structFields{known: map[string]bool{}, byName: map[string]structField{}}
	for _, f := range jsonFields(t) {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		sf := structField{name: name, typ: f.Type, textOrList: f.Tag.Get("drover") == "textOrList", index: f.Index}
		fs.fields = append(fs.fields, sf)
		fs.known[name] = true
		fs.names = append(fs.names, name)
		fs.byName[name] = sf
	}
	fieldCache.Store(t, fs)
	return fs
}

// jsonFields lists the fields encoding/json decodes into t, with an
// embedded struct's (Node's Access) inlined as json inlines them; each
// Index is from t.
func jsonFields(t reflect.Type) []reflect.StructField {
	var out []reflect.StructField
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct:
			for _, inner := range jsonFields(f.Type) {
				inner.Index = append([]int{i}, inner.Index...)
				out = append(out, inner)
			}
		case !f.IsExported() || name == "" || name == "-":
		default:
			out = append(out, f)
		}
	}
	return out
}

// walkText checks a scalar bound for a string field.
func walkText(v any, path string, ps *Problems) {
	switch v.(type) {
	case string:
	case bool:
		problem(ps, path, "%v is a YAML boolean (as are yes, no, on and off), not text; quote it", v)
	case float64:
		problem(ps, path, "%v is a YAML number, not text, and may not be what was written (1.10 reads as 1.1); quote it", v)
	case int, int64, uint64:
		if strings.HasSuffix(path, ".mode") {
			problem(ps, path, `must be a quoted string such as "0644": YAML reads an unquoted 0644 as the number 420`)
		}
	default:
		problem(ps, path, "must be text, not %s", kindOf(v))
	}
}

// kindOf names a decoded YAML value's kind for messages.
func kindOf(v any) string {
	switch v.(type) {
	case map[any]any:
		return "a mapping"
	case []any:
		return "a list"
	case string:
		return "text"
	case bool:
		return "a boolean"
	default:
		return "a number"
	}
}

func sortedAnyKeys(m map[any]any) []any {
	keys := make([]any, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b any) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
	return keys
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// closest returns the known name a misspelt key most likely meant: the
// same ignoring case, or within two edits.
func closest(key string, names []string) string {
	best, bestDist := "", 3
	for _, n := range names {
		if strings.EqualFold(n, key) {
			return n
		}
		if d := editDistance(strings.ToLower(key), strings.ToLower(n)); d < bestDist {
			best, bestDist = n, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance, for short field names.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
