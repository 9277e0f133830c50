package manifests

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestHealthKindsCoverTheSchema: every check field of Health (a pointer
// to a check struct) has its row in the table of kinds, under its JSON
// name, and a Health that sets only it is of that kind. A kind added to
// the schema without a row would validate as "set one of …" forever.
func TestHealthKindsCoverTheSchema(t *testing.T) {
	typ := reflect.TypeFor[Health]()
	var fields []HealthKind
	for f := range typ.Fields() {
		if f.Type.Kind() != reflect.Pointer {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		fields = append(fields, HealthKind(name))
		h := &Health{}
		reflect.ValueOf(h).Elem().FieldByIndex(f.Index).Set(reflect.New(f.Type.Elem()))
		if kind, err := h.Kind(); kind != HealthKind(name) || err != nil {
			t.Errorf("Health with only %s set: Kind() = %q, %v", f.Name, kind, err)
		}
	}
	if !slices.Equal(fields, HealthKinds()) {
		t.Errorf("Health's check fields %q, table of kinds %q", fields, HealthKinds())
	}
}

// TestHealthKindOneOf: a Health that sets no kind or two is an error,
// never "no check"; only a nil Health is no check.
func TestHealthKindOneOf(t *testing.T) {
	if kind, err := (*Health)(nil).Kind(); kind != "" || err != nil {
		t.Errorf("nil: %q, %v", kind, err)
	}
	if _, err := (&Health{}).Kind(); err == nil || err.Error() != "set one of exec, http or tcp" {
		t.Errorf("none: %v", err)
	}
	if _, err := (&Health{TCP: &TCPCheck{}, HTTP: &HTTPCheck{}}).Kind(); err == nil || err.Error() != "set only one of exec, http or tcp" {
		t.Errorf("two: %v", err)
	}
	if host, port := (&Health{HTTP: &HTTPCheck{Host: "h", Port: 8080}}).Endpoint(); host != "h" || port != 8080 {
		t.Errorf("http endpoint %q %d", host, port)
	}
	if _, port := (&Health{Exec: &ExecCheck{Command: []string{"true"}}}).Endpoint(); port != 0 {
		t.Errorf("exec endpoint port %d", port)
	}
}
