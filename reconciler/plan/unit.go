package plan

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"path"
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
func RenderUnit(r *manifests.Renderer, comp *manifests.Component, node *manifests.Node, serviceDeps []string) ([]byte, error) {
	u, err := renderUnit(r, nil, comp, node, serviceDeps, false)
	return u.text, err
}

// units holds the units one compile has written, by what each is made
// of: in a fleet most nodes' units are byte for byte the same, so each is
// written and hashed once, and the nodes share its bytes.
type units map[unitKey]unit

type unitKey struct {
	comp              *manifests.Component
	cmd, reload, deps string
	inlineEnv         bool
}

// unit is a unit's text and its sha256 (hex).
type unit struct {
	text []byte
	hash string
}

// renderUnit is RenderUnit, through cache when it is not nil; inlineEnv
// renders service.environment as Environment= lines, as drover did
// before the environment file, only so that Compile knows the unit hash
// such a drover left in a receipt (EnvMigration). The command lines are
// rendered for the node; the rest of the unit follows from them and the
// component.
func renderUnit(r *manifests.Renderer, cache units, comp *manifests.Component, node *manifests.Node, serviceDeps []string, inlineEnv bool) (unit, error) {
	svc := comp.Service
	if svc == nil {
		return unit{}, nil
	}
	render := func(name, text string) ([]byte, error) { return r.Execute(name, text, node, comp) }
	cmd, err := commandLine("exec", svc.Exec, svc.ExecArgs, render)
	if err != nil {
		return unit{}, err
	}
	reload := ""
	if svc.Reload != "" || svc.ReloadArgs != nil {
		if reload, err = commandLine("reload", svc.Reload, svc.ReloadArgs, render); err != nil {
			return unit{}, err
		}
	}
	key := unitKey{comp: comp, cmd: cmd, reload: reload, deps: strings.Join(serviceDeps, "\n"), inlineEnv: inlineEnv}
	if u, ok := cache[key]; ok {
		return u, nil
	}
	text, err := unitText(comp, manifests.ActiveDir(r.InstallRoot(), comp.Name), cmd, reload, serviceDeps, inlineEnv)
	if err != nil {
		return unit{}, err
	}
	u := unit{text: text, hash: manifests.SHA256Hex(text)}
	if cache != nil {
		cache[key] = u
	}
	return u, nil
}

// unitText writes the unit of comp, its command lines rendered.
func unitText(comp *manifests.Component, dir, cmd, reload string, serviceDeps []string, inlineEnv bool) ([]byte, error) {
	svc := comp.Service
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
	if reload != "" {
		fmt.Fprintf(&b, "ExecReload=%s\n", escapeSpecifiers(reload))
	}
	if svc.User != "" {
		fmt.Fprintf(&b, "User=%s\n", svc.User)
	}
	if svc.Group != "" {
		fmt.Fprintf(&b, "Group=%s\n", svc.Group)
	}
	if env, err := RenderEnvironmentFile(svc); err != nil {
		return nil, err
	} else if env != nil && inlineEnv {
		for _, k := range slices.Sorted(maps.Keys(svc.Environment)) {
			fmt.Fprintf(&b, "Environment=\"%s=%s\"\n", k, strings.NewReplacer(`\`, `\\`, `"`, `\"`, `%`, `%%`).Replace(svc.Environment[k]))
		}
	} else if env != nil {
		// Through the active link, like WorkingDirectory: a version
		// upgrade leaves the unit as it is, and a rollback's link switch
		// takes the old version's environment along.
		fmt.Fprintf(&b, "EnvironmentFile=%s\n", escapeSpecifiers(path.Join(dir, manifests.EnvFileName)))
	}
	fmt.Fprintf(&b, "WorkingDirectory=%s\n", escapeSpecifiers(dir))
	fmt.Fprintf(&b, "Restart=%s\n", restart)
	b.WriteString("RestartSec=2s\n")
	b.WriteString("\n[Install]\n")
	b.WriteString("WantedBy=multi-user.target\n")
	return b.Bytes(), nil
}

// commandLine renders service.exec or service.reload into one systemd
// command line. A list of arguments is rendered argument by argument and
// each quoted for systemd (systemd.service(5), "Command lines"): inside
// double quotes a backslash escapes \ and ", and $ is written $$ so an
// argument is never expanded from the environment; one line stays as
// written, systemd's quoting and $VAR expansion its own.
func commandLine(field, line string, args []string, render func(name, text string) ([]byte, error)) (string, error) {
	if args == nil {
		out, err := render(manifests.CommandTemplate(field, -1), line)
		if err != nil {
			return "", fmt.Errorf("service %s: %w", field, err)
		}
		cmd := strings.TrimSpace(string(out))
		if err := checkCommandLine(cmd); err != nil {
			return "", fmt.Errorf("service %s %q: %w", field, cmd, err)
		}
		return cmd, nil
	}
	if len(args) == 0 {
		return "", fmt.Errorf("service %s: %w", field, ErrUnitEmpty)
	}
	quote := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `$`, `$$`)
	parts := make([]string, len(args))
	for i, a := range args {
		out, err := render(manifests.CommandTemplate(field, i), a)
		if err != nil {
			return "", fmt.Errorf("service %s[%d]: %w", field, i, err)
		}
		if strings.ContainsAny(string(out), "\n\r") {
			return "", fmt.Errorf("service %s[%d]: %w", field, i, ErrUnitNewline)
		}
		if hasControl(string(out)) {
			return "", fmt.Errorf("service %s[%d]: %w", field, i, ErrUnitControl)
		}
		if i == 0 && len(out) == 0 {
			return "", fmt.Errorf("service %s[0]: %w", field, ErrUnitEmpty)
		}
		parts[i] = `"` + quote.Replace(string(out)) + `"`
	}
	return strings.Join(parts, " "), nil
}

// RenderEnvironmentFile is the text of the service's EnvironmentFile=,
// or nil for a service without environment. service.environment often
// holds secrets: a unit file is world-readable and systemd shows its
// Environment= to any local user (systemctl show), so the values go to
// <version dir>/.drover-env, which drover writes with mode 0600 like any
// rendered file, and the unit only names it.
//
// Each variable is one line KEY="VALUE", quoted as systemd reads an
// environment file (systemd.exec(5)): inside double quotes a backslash
// makes the next \, ", ` or $ literal. Nothing else is special there
// (no % specifiers), so a value means what it says, as it did in
// Environment=.
func RenderEnvironmentFile(svc *manifests.Service) ([]byte, error) {
	if svc == nil || len(svc.Environment) == 0 {
		return nil, nil
	}
	keys := make([]string, 0, len(svc.Environment))
	for k := range svc.Environment {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b bytes.Buffer
	b.WriteString("# Written by drover; local changes are overwritten.\n")
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "`", "\\`", `$`, `\$`)
	for _, k := range keys {
		if !unitEnvKey.MatchString(k) {
			return nil, fmt.Errorf("service environment %q: %w", k, ErrUnitName)
		}
		v := svc.Environment[k]
		if hasControl(v) {
			return nil, fmt.Errorf("service environment %s: %w", k, ErrUnitControl)
		}
		fmt.Fprintf(&b, "%s=\"%s\"\n", k, r.Replace(v))
	}
	return b.Bytes(), nil
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
