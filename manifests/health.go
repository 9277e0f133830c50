package manifests

import (
	"errors"
	"fmt"
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
		defaults: func(*Health) {},
		endpoint: func(*Health) (string, int) { return "", 0 },
	},
	{
		kind: HealthHTTP,
		set:  func(h *Health) bool { return h.HTTP != nil },
		validate: func(v *validator, p string, h *Health) {
			t := h.HTTP
			v.checkHost(p+".http.host", t.Host)
			v.port(p+".http.port", t.Port, false)
			if t.Path != "" && (!strings.HasPrefix(t.Path, "/") || strings.ContainsAny(t.Path, " \t\r\n")) {
				v.errorf(p+".http.path", "%q must be a URL path starting with /", t.Path)
			}
			if t.ExpectStatus != 0 {
				v.between(p+".http.expectStatus", t.ExpectStatus, 100, 599)
			}
		},
		defaults: func(h *Health) {
			if h.HTTP.Path == "" {
				h.HTTP.Path = "/"
			}
			if h.HTTP.ExpectStatus == 0 {
				h.HTTP.ExpectStatus = 200
			}
		},
		endpoint: func(h *Health) (string, int) { return h.HTTP.Host, h.HTTP.Port },
	},
	{
		kind: HealthTCP,
		set:  func(h *Health) bool { return h.TCP != nil },
		validate: func(v *validator, p string, h *Health) {
			v.checkHost(p+".tcp.host", h.TCP.Host)
			v.port(p+".tcp.port", h.TCP.Port, false)
		},
		defaults: func(*Health) {},
		endpoint: func(h *Health) (string, int) { return h.TCP.Host, h.TCP.Port },
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
}
