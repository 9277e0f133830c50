package manifests

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
)

// HealthKind names a kind of check: the field of Health that sets it.
type HealthKind string

const (
	HealthExec HealthKind = "exec"
	HealthHTTP HealthKind = "http"
	HealthTCP  HealthKind = "tcp"
)

// healthKind is one row of the table of check kinds: the one place that
// knows, per kind, whether a Health sets it, how it is validated, its
// defaults and what it connects to. Running a kind belongs to probes
// (probes/health.go keeps its checkers under the same names); a test
// there requires a checker for every kind here, and one here a row for
// every check field of Health.
type healthKind struct {
	kind     HealthKind
	set      func(h *Health) bool
	validate func(v *validator, p string, h *Health)
	defaults func(h *Health)
	// endpoint is the host ("" for the node's own address) and port the
	// check connects to; port 0 when it connects to nothing.
	endpoint func(h *Health) (string, int)
	// templates are the kind's fields that are templates (templated.go).
	templates func(h *Health, p string) []templateField
}

var healthKinds = []healthKind{
	{
		kind: HealthExec,
		set:  func(h *Health) bool { return h.Exec != nil },
		validate: func(v *validator, p string, h *Health) {
			switch e := h.Exec; {
			case len(e.Command) == 0:
				v.errorf(p+".exec.command", "required")
			case e.Command[0] == "":
				v.errorf(p+".exec.command[0]", "the program must not be empty")
			}
		},
		defaults:  func(*Health) {},
		endpoint:  func(*Health) (string, int) { return "", 0 },
		templates: func(h *Health, p string) []templateField { return listFields(p+".exec.command", h.Exec.Command) },
	},
	{
		kind: HealthHTTP,
		set:  func(h *Health) bool { return h.HTTP != nil },
		validate: func(v *validator, p string, h *Health) {
			t := h.HTTP
			if v.literal(t.Host) {
				v.checkHost(p+".http.host", t.Host)
			}
			v.port(p+".http.port", t.Port, false)
			if t.Path != "" && v.literal(t.Path) && (!strings.HasPrefix(t.Path, "/") || strings.ContainsAny(t.Path, " \t\r\n")) {
				v.errorf(p+".http.path", "%q must be a URL path starting with /", t.Path)
			}
			if t.ExpectStatus != 0 {
				v.between(p+".http.expectStatus", t.ExpectStatus, 100, 599)
			}
			for i, s := range t.ExpectStatuses {
				v.between(at(p+".http.expectStatuses", i), s, 100, 599)
			}
			for _, k := range slices.Sorted(maps.Keys(t.Headers)) {
				if !isHeaderName(k) {
					v.errorf(p+".http.headers", "%q is not an HTTP header name", k)
				} else if val := t.Headers[k]; v.literal(val) && hasControl(val) {
					v.errorf(p+".http.headers."+k, "must not contain control characters")
				}
			}
			if t.BodyRegexp != "" && v.literal(t.BodyRegexp) {
				if _, err := regexp.Compile(t.BodyRegexp); err != nil {
					v.errorf(p+".http.bodyRegexp", "%v", err)
				}
			}
			for _, k := range slices.Sorted(maps.Keys(t.BodyJSON)) {
				if k == "" {
					v.errorf(p+".http.bodyJSON", "a field name must not be empty")
				}
			}
		},
		defaults: func(h *Health) {
			if h.HTTP.Path == "" {
				h.HTTP.Path = "/"
			}
			if h.HTTP.ExpectStatus == 0 && len(h.HTTP.ExpectStatuses) == 0 {
				h.HTTP.ExpectStatus = 200
			}
		},
		endpoint: func(h *Health) (string, int) { return h.HTTP.Host, h.HTTP.Port },
		templates: func(h *Health, p string) []templateField {
			t := h.HTTP
			out := []templateField{textField(p+".http.host", &t.Host), textField(p+".http.path", &t.Path), textField(p+".http.bodyRegexp", &t.BodyRegexp)}
			out = append(out, mapFields(p+".http.headers", t.Headers)...)
			return append(out, mapFields(p+".http.bodyJSON", t.BodyJSON)...)
		},
	},
	{
		kind: HealthTCP,
		set:  func(h *Health) bool { return h.TCP != nil },
		validate: func(v *validator, p string, h *Health) {
			if v.literal(h.TCP.Host) {
				v.checkHost(p+".tcp.host", h.TCP.Host)
			}
			v.port(p+".tcp.port", h.TCP.Port, false)
		},
		defaults: func(*Health) {},
		endpoint: func(h *Health) (string, int) { return h.TCP.Host, h.TCP.Port },
		templates: func(h *Health, p string) []templateField {
			return []templateField{textField(p+".tcp.host", &h.TCP.Host)}
		},
	},
}

// HealthKinds lists every kind of check, in schema order.
func HealthKinds() []HealthKind {
	out := make([]HealthKind, len(healthKinds))
	for i, k := range healthKinds {
		out[i] = k.kind
	}
	return out
}

// kindList is "exec, http or tcp".
func kindList() string {
	names := make([]string, len(healthKinds))
	for i, k := range healthKinds {
		names[i] = string(k.kind)
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// Kind is the kind of check h sets: "" with no error for a nil h (no
// check), an error when it sets none or more than one (Validate refuses
// both; anyone else must treat it as a failing check, never as none).
func (h *Health) Kind() (HealthKind, error) {
	if h == nil {
		return "", nil
	}
	row, err := h.row()
	if err != nil {
		return "", err
	}
	return row.kind, nil
}

func (h *Health) row() (*healthKind, error) {
	var found *healthKind
	for i := range healthKinds {
		if healthKinds[i].set(h) {
			if found != nil {
				return nil, fmt.Errorf("set only one of %s", kindList())
			}
			found = &healthKinds[i]
		}
	}
	if found == nil {
		return nil, errors.New("set one of " + kindList())
	}
	return found, nil
}

// Endpoint is the host ("" for the node's own address) and port the
// check connects to; port 0 for a check that connects to nothing, and
// for a nil or invalid h.
func (h *Health) Endpoint() (string, int) {
	if h == nil {
		return "", 0
	}
	row, err := h.row()
	if err != nil {
		return "", 0
	}
	return row.endpoint(h)
}

// setDefaults fills in what the check's kind defaults.
func (h *Health) setDefaults() {
	if h.Timeout == "" {
		h.Timeout = DefaultCheckTimeout
	}
	for _, k := range healthKinds {
		if k.set(h) {
			k.defaults(h)
		}
	}
}

// health checks a health (or leader) check: exactly one kind, each kind
// it sets by its own rules, and the timeout.
func (v *validator) health(p string, h *Health) {
	if _, err := h.Kind(); err != nil {
		v.errorf(p, "%s", err)
	}
	for _, k := range healthKinds {
		if k.set(h) {
			k.validate(v, p, h)
		}
	}
	v.duration(p+".timeout", h.Timeout)
	if !v.rendered {
		v.parseFields(h.templateFields(p))
	}
}

// isHeaderName reports an HTTP field name (RFC 9110 token).
func isHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r > 0x7e || r <= ' ' || strings.ContainsRune("\"(),/:;<=>?@[\\]{}", r) {
			return false
		}
	}
	return true
}
