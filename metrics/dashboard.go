package metrics

import _ "embed"

// Dashboard is the Grafana dashboard shipped with drover (dashboard.json),
// ready to import; its Prometheus datasource is a variable.
//
//go:embed dashboard.json
var Dashboard []byte
