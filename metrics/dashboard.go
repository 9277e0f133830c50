package metrics

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
)

// Dashboard is the Grafana dashboard shipped with drover (dashboard.json),
// ready to import; its Prometheus datasource is a variable.
//
//go:embed dashboard.json
var Dashboard []byte

// importInput is the datasource input Grafana's import asks for.
const importInput = "DS_PROMETHEUS"

// DashboardForImport is Dashboard as Grafana's "Export for sharing
// externally" writes it: with __inputs and __requires, so that importing
// it (Dashboards > Import) asks which Prometheus datasource to use, and
// the datasource variable starts on that choice. Panels keep using the
// variable, so the datasource can still be switched after import.
func DashboardForImport() ([]byte, error) {
	var d map[string]any
	if err := json.Unmarshal(Dashboard, &d); err != nil {
		return nil, fmt.Errorf("dashboard.json: %w", err)
	}
	ref := "${" + importInput + "}"
	found := false
	if tpl, ok := d["templating"].(map[string]any); ok {
		list, _ := tpl["list"].([]any)
		for _, v := range list {
			if v, ok := v.(map[string]any); ok && v["type"] == "datasource" && v["name"] == "datasource" {
				v["current"] = map[string]any{"selected": false, "text": ref, "value": ref}
				found = true
			}
		}
	}
	if !found {
		return nil, fmt.Errorf("dashboard.json: no datasource variable named datasource")
	}
	d["__inputs"] = []any{map[string]any{
		"name": importInput, "label": "Prometheus", "description": "The Prometheus that scrapes drover",
		"type": "datasource", "pluginId": "prometheus", "pluginName": "Prometheus",
	}}
	d["__requires"] = []any{
		map[string]any{"type": "grafana", "id": "grafana", "name": "Grafana", "version": "10.0.0"},
		map[string]any{"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"},
	}
	// An imported dashboard gets its id from Grafana.
	d["id"] = nil
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(d); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
