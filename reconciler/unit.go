package reconciler

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/drover-project/drover/manifests"
)

// Errors from rendering a unit; the wrapping error says which field.
var (
	ErrUnitNewline   = manifests.ErrCommandNewline
	ErrUnitControl   = manifests.ErrCommandControl
	ErrUnitQuote     = manifests.ErrCommandQuote
	ErrUnitBackslash = manifests.ErrCommandBackslash
	ErrUnitEmpty     = manifests.ErrCommandEmpty
	ErrUnitName      = errors.New("is not a valid name")
	ErrUnitRestart   = errors.New("is not a systemd Restart= value")
)

var (
	unitAccount = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)
	unitEnvKey  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// restartValues are the values systemd accepts for Restart=.
var restartValues = []string{"no", "always", "on-success", "on-failure", "on-abnormal", "on-abort", "on-watchdog"}

// RenderUnit writes the systemd unit of a component for one node, or nil
// for a component without a service. The text is deterministic, so its
// hash tells whether the unit on a node is current.
//
// The version is deliberately absent: ExecStart and WorkingDirectory go
// through the active link ({{ .Dir }}), so a pure version upgrade leaves
// the unit byte-identical and needs no daemon-reload. An exec line that
// names .VersionDir does change with the version, as it must.
//
// Exec is a systemd command line (systemd.service(5)): its quoting and
// $VAR expansion from Environment= work as systemd documents, but '%' is
// always literal (escaped to %%), and it must be one line. serviceDeps are
// dependsOn components with a unit on the same node, ordered before this
// one with After= and pulled in with Wants=.
func RenderUnit(comp *manifests.Component, ctx manifests.TemplateContext, serviceDeps []string) ([]byte, error) {
	svc := comp.Service
	if svc == nil {
		return nil, nil
	}
	execLine, err := manifests.Execute("service.exec", svc.Exec, ctx)
	if err != nil {
		return nil, fmt.Errorf("service exec: %w", err)
	}
	cmd := strings.TrimSpace(string(execLine))
	if err := checkCommandLine(cmd); err != nil {
		return nil, fmt.Errorf("service exec %q: %w", cmd, err)
	}
	restart := svc.Restart
	if restart == "" {
		restart = manifests.DefaultRestart
	}
	if !slices.Contains(restartValues, restart) {
		return nil, fmt.Errorf("service restart %q: %w", restart, ErrUnitRestart)
	}
	for _, f := range [][2]string{{"user", svc.User}, {"group", svc.Group}} {
		if f[1] != "" && !unitAccount.MatchString(f[1]) {
			return nil, fmt.Errorf("service %s %q: %w", f[0], f[1], ErrUnitName)
		}
	}

	var b bytes.Buffer
	b.WriteString("# Written by drover; local changes are overwritten.\n")
	b.WriteString("[Unit]\n")
	fmt.Fprintf(&b, "Description=drover: %s\n", comp.Name)
	b.WriteString("After=network-online.target\n")
	b.WriteString("Wants=network-online.target\n")
	for _, dep := range serviceDeps {
		fmt.Fprintf(&b, "After=%s\n", UnitName(dep))
		fmt.Fprintf(&b, "Wants=%s\n", UnitName(dep))
	}
	b.WriteString("\n[Service]\n")
	b.WriteString("Type=simple\n")
	fmt.Fprintf(&b, "ExecStart=%s\n", escapeSpecifiers(cmd))
	if svc.User != "" {
		fmt.Fprintf(&b, "User=%s\n", svc.User)
	}
	if svc.Group != "" {
		fmt.Fprintf(&b, "Group=%s\n", svc.Group)
	}
	keys := make([]string, 0, len(svc.Environment))
	for k := range svc.Environment {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		line, err := environmentLine(k, svc.Environment[k])
		if err != nil {
			return nil, err
		}
		b.WriteString(line)
	}
	fmt.Fprintf(&b, "WorkingDirectory=%s\n", escapeSpecifiers(ctx.Component.Dir))
	fmt.Fprintf(&b, "Restart=%s\n", restart)
	b.WriteString("RestartSec=2s\n")
	b.WriteString("\n[Install]\n")
	b.WriteString("WantedBy=multi-user.target\n")
	return b.Bytes(), nil
}

// environmentLine quotes one variable as systemd's Environment= parses
// it: the whole assignment in double quotes, with backslash and quote
// escaped, and '%' doubled because specifiers expand there too.
func environmentLine(key, value string) (string, error) {
	if !unitEnvKey.MatchString(key) {
		return "", fmt.Errorf("service environment %q: %w", key, ErrUnitName)
	}
	if hasControl(value) {
		return "", fmt.Errorf("service environment %s: %w", key, ErrUnitControl)
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `%`, `%%`)
	return fmt.Sprintf("Environment=\"%s=%s\"\n", key, r.Replace(value)), nil
}

// escapeSpecifiers makes '%' literal in a unit file value.
func escapeSpecifiers(s string) string { return strings.ReplaceAll(s, "%", "%%") }

// checkCommandLine rejects what systemd would misread: more than one line,
// control characters, a trailing backslash (a line continuation in unit
// files) and unbalanced quotes.
func checkCommandLine(s string) error { return manifests.CheckCommandLine(s) }

// hasControl reports ASCII control characters other than tab.
func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return (r < 0x20 && r != '\t') || r == 0x7f })
}
