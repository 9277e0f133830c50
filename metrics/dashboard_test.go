package metrics

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// grafanaDashboard is the part of Grafana's dashboard model (schemaVersion
// 39) that can be checked offline.
type grafanaDashboard struct {
	Title         string         `json:"title"`
	UID           string         `json:"uid"`
	SchemaVersion int            `json:"schemaVersion"`
	Panels        []grafanaPanel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Definition string          `json:"definition"`
			Datasource *datasourceRef  `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type grafanaPanel struct {
	ID         *int           `json:"id"`
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Datasource *datasourceRef `json:"datasource"`
	GridPos    *struct {
		X, Y, W, H int
	} `json:"gridPos"`
	Targets []struct {
		RefID      string         `json:"refId"`
		Expr       string         `json:"expr"`
		Datasource *datasourceRef `json:"datasource"`
	} `json:"targets"`
}

// panelTypes are the Grafana core panels the dashboard may use.
var panelTypes = map[string]bool{"stat": true, "timeseries": true, "table": true, "gauge": true, "bargauge": true, "state-timeline": true}

// grafanaVars are the template variables in exprs and what to put in their
// place so that promtool can parse the query.
var grafanaVars = strings.NewReplacer(
	"$__rate_interval", "5m",
	"${__rate_interval}", "5m",
	"$__interval", "1m",
	"$instance", ".*",
	"${instance}", ".*",
)

func loadDashboard(t *testing.T) grafanaDashboard {
	t.Helper()
	var d grafanaDashboard
	dec := json.NewDecoder(bytes.NewReader(Dashboard))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	if dec.More() {
		t.Fatal("dashboard.json: data after the dashboard object")
	}
	return d
}

func TestDashboardModel(t *testing.T) {
	d := loadDashboard(t)
	if d.Title == "" {
		t.Error("no title")
	}
	if !regexp.MustCompile(`^[a-zA-Z0-9_-]{1,40}$`).MatchString(d.UID) {
		t.Errorf("uid %q: want 1 to 40 of [a-zA-Z0-9_-]", d.UID)
	}
	if d.SchemaVersion < 36 {
		t.Errorf("schemaVersion %d: want 36 or later (datasource references by uid)", d.SchemaVersion)
	}
	if len(d.Panels) == 0 {
		t.Fatal("no panels")
	}

	// The datasource is a variable, so the dashboard imports into any
	// Grafana whatever its Prometheus datasource is called.
	dsVar := ""
	for _, v := range d.Templating.List {
		if v.Type == "datasource" && string(v.Query) == `"prometheus"` {
			dsVar = v.Name
		}
	}
	if dsVar == "" {
		t.Fatal("templating has no datasource variable of type prometheus")
	}
	wantDS := datasourceRef{Type: "prometheus", UID: "${" + dsVar + "}"}
	known := knownNames(t)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		if v.Datasource == nil || *v.Datasource != wantDS {
			t.Errorf("variable %s: datasource %+v, want %+v", v.Name, v.Datasource, wantDS)
		}
		checkMetricRefs(t, "variable "+v.Name, v.Definition, known)
	}

	ids := map[int]string{}
	var cells []string // 24 columns by rows, to find overlapping panels
	for i, p := range d.Panels {
		where := fmt.Sprintf("panel %d (%q)", i, p.Title)
		if p.ID == nil {
			t.Errorf("%s: no id", where)
		} else if other, dup := ids[*p.ID]; dup {
			t.Errorf("%s: id %d already used by %q", where, *p.ID, other)
		} else {
			ids[*p.ID] = p.Title
		}
		if p.Title == "" {
			t.Errorf("%s: no title", where)
		}
		if !panelTypes[p.Type] {
			t.Errorf("%s: type %q is not a known core panel", where, p.Type)
		}
		if p.Datasource == nil || *p.Datasource != wantDS {
			t.Errorf("%s: datasource %+v, want %+v", where, p.Datasource, wantDS)
		}
		g := p.GridPos
		if g == nil || g.W < 1 || g.H < 1 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
			t.Errorf("%s: gridPos %+v must lie within 24 columns with positive size", where, g)
		} else {
			for y := g.Y; y < g.Y+g.H; y++ {
				for len(cells) <= y {
					cells = append(cells, strings.Repeat(".", 24))
				}
				row := []byte(cells[y])
				for x := g.X; x < g.X+g.W; x++ {
					if row[x] != '.' {
						t.Errorf("%s: overlaps another panel at x=%d y=%d", where, x, y)
						break
					}
					row[x] = '#'
				}
				cells[y] = string(row)
			}
		}
		if len(p.Targets) == 0 {
			t.Errorf("%s: no targets", where)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if tg.RefID == "" || refs[tg.RefID] {
				t.Errorf("%s: refId %q empty or repeated", where, tg.RefID)
			}
			refs[tg.RefID] = true
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("%s/%s: no expr", where, tg.RefID)
			}
			if tg.Datasource == nil || *tg.Datasource != wantDS {
				t.Errorf("%s/%s: datasource %+v, want %+v", where, tg.RefID, tg.Datasource, wantDS)
			}
		}
	}
}

// TestDashboardQueriesParse checks every panel query with promtool (as
// recording rules, once Grafana's variables are filled in) and that it names
// only metrics drover exports or the shipped rules record.
func TestDashboardQueriesParse(t *testing.T) {
	d := loadDashboard(t)
	known := knownNames(t)
	var exprs []string
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			e := grafanaVars.Replace(tg.Expr)
			if strings.Contains(e, "$") {
				t.Errorf("panel %q/%s: unknown variable left in %q", p.Title, tg.RefID, e)
				continue
			}
			checkMetricRefs(t, "panel "+p.Title, e, known)
			exprs = append(exprs, e)
		}
	}
	if len(exprs) == 0 {
		t.Fatal("no queries to check")
	}
	runPromtool(t, "", nil, "check", "rules", writeRulesFile(t, exprs))
}

// TestCheckRulesCatchesBadExpr shows that the promtool check above fails
// on a query that does not parse.
func TestCheckRulesCatchesBadExpr(t *testing.T) {
	p := writeRulesFile(t, []string{`sum by (node (drover_node_converged)`})
	out, err := exec.Command(promtool(t), "check", "rules", p).CombinedOutput()
	if err == nil {
		t.Fatalf("promtool accepted a broken expr:\n%s", out)
	}
}
