package metrics

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestDashboardForImport: the export form declares the Prometheus input
// Grafana's import asks for, the datasource variable starts on it, every
// ${...} reference is the input or a variable of the dashboard, and the
// rest is the shipped dashboard unchanged.
func TestDashboardForImport(t *testing.T) {
	b, err := DashboardForImport()
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	inputs, _ := got["__inputs"].([]any)
	if len(inputs) != 1 {
		t.Fatalf("__inputs: %v, want one", got["__inputs"])
	}
	in := inputs[0].(map[string]any)
	if in["type"] != "datasource" || in["pluginId"] != "prometheus" || in["name"] != importInput {
		t.Errorf("__inputs[0] = %v, want a prometheus datasource named %s", in, importInput)
	}
	if _, ok := got["__requires"]; !ok {
		t.Error("no __requires")
	}
	var vars []string
	for _, v := range got["templating"].(map[string]any)["list"].([]any) {
		v := v.(map[string]any)
		vars = append(vars, v["name"].(string))
		if v["name"] == "datasource" {
			cur, _ := v["current"].(map[string]any)
			if cur["value"] != "${"+importInput+"}" {
				t.Errorf("datasource variable starts on %v, want the input", cur)
			}
		}
	}
	text := string(b)
	for _, ref := range regexpRefs.FindAllStringSubmatch(text, -1) {
		name := ref[1]
		if name != importInput && !strings.HasPrefix(name, "__") && !slices.Contains(vars, name) {
			t.Errorf("${%s} is neither the input nor a variable", name)
		}
	}

	// Take the additions away: what is left is the shipped dashboard.
	var shipped map[string]any
	if err := json.Unmarshal(Dashboard, &shipped); err != nil {
		t.Fatal(err)
	}
	delete(got, "__inputs")
	delete(got, "__requires")
	got["id"] = shipped["id"]
	for _, v := range got["templating"].(map[string]any)["list"].([]any) {
		v := v.(map[string]any)
		if v["name"] == "datasource" {
			v["current"] = map[string]any{}
		}
	}
	a, _ := json.Marshal(got)
	s, _ := json.Marshal(shipped)
	if string(a) != string(s) {
		t.Error("the export changes more than __inputs, __requires, id and the datasource variable's current value")
	}
}

var regexpRefs = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)[^}]*\}`)
