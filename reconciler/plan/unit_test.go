package plan

import (
	"errors"
	"strings"
	"testing"

	"github.com/drover-project/drover/manifests"
)

// unitFixture is a two-node cluster whose "app" component depends on a
// service "db" on masters and on a files-only "conf".
func unitFixture(svc *manifests.Service) (*manifests.Cluster, *manifests.Component) {
	c := &manifests.Cluster{
		APIVersion: manifests.APIVersion, Kind: manifests.Kind,
		Metadata: manifests.Metadata{Name: "t"},
		Spec: manifests.Spec{
			Nodes: []manifests.Node{
				{Name: "m1", Address: "127.0.2.1", Roles: []string{"master"}},
				{Name: "a1", Address: "127.0.2.11", Roles: []string{"agent"}},
			},
			Components: []manifests.Component{
				{Name: "db", Version: "1", Roles: []string{"master"}, Service: &manifests.Service{Exec: "/usr/bin/db"}},
				{Name: "conf", Version: "1"},
				{Name: "app", Version: "2.0", DependsOn: []string{"db", "conf"}, Service: svc},
			},
		},
	}
	c.SetDefaults()
	app, _ := c.ComponentByName("app")
	return c, app
}

func renderFixtureUnit(t *testing.T, svc *manifests.Service, node string) (string, error) {
	t.Helper()
	c, app := unitFixture(svc)
	n, _ := c.NodeByName(node)
	b, err := RenderUnit(c.NewRenderer(t.Context()), app, n, serviceDeps(c, n, app))
	return string(b), err
}

func TestUnitText(t *testing.T) {
	got, err := renderFixtureUnit(t, &manifests.Service{
		Exec:        `{{ .Dir }}/bin/app --listen={{ .Node.Address }}:80 --date-format=%Y "a b"`,
		User:        "app",
		Group:       "app",
		Environment: map[string]string{"ZED": `say "hi" 100%`, "ALPHA": `C:\dir`},
	}, "m1")
	if err != nil {
		t.Fatal(err)
	}
	want := `# Written by drover; local changes are overwritten.
[Unit]
Description=drover: app
After=network-online.target
Wants=network-online.target
After=drover-db.service
Wants=drover-db.service

[Service]
Type=simple
ExecStart=/opt/drover/active/app/bin/app --listen=127.0.2.1:80 --date-format=%%Y "a b"
User=app
Group=app
EnvironmentFile=/opt/drover/active/app/.drover-env
WorkingDirectory=/opt/drover/active/app
Restart=on-failure
RestartSec=2s

[Install]
WantedBy=multi-user.target
`
	if got != want {
		t.Errorf("unit:\n%s\nwant:\n%s", got, want)
	}
}

func TestUnitDependsOnlyOnServicesOfTheSameNode(t *testing.T) {
	// db runs on masters only and conf has no service: on a1 the unit
	// must not order itself after either.
	got, err := renderFixtureUnit(t, &manifests.Service{Exec: "/bin/app"}, "a1")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(got, "drover-db") || strings.Contains(got, "drover-conf") {
		t.Errorf("a1's unit names a dependency it does not run:\n%s", got)
	}
}

func TestUnitUnchangedByPureVersionUpgrade(t *testing.T) {
	render := func(version, exec string) string {
		c, app := unitFixture(&manifests.Service{Exec: exec})
		app.Version = version
		n, _ := c.NodeByName("m1")
		b, err := RenderUnit(c.NewRenderer(t.Context()), app, n, nil)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if a, b := render("1.0", "{{ .Dir }}/app"), render("2.0", "{{ .Dir }}/app"); a != b {
		t.Errorf("unit through the active link changed with the version:\n%s\n%s", a, b)
	}
	if a, b := render("1.0", "{{ .Component.VersionDir }}/app"), render("2.0", "{{ .Component.VersionDir }}/app"); a == b {
		t.Error("unit naming the version dir did not change with the version")
	}
}

func TestUnitNilWithoutService(t *testing.T) {
	c, _ := unitFixture(nil)
	conf, _ := c.ComponentByName("conf")
	n, _ := c.NodeByName("m1")
	b, err := RenderUnit(c.NewRenderer(t.Context()), conf, n, nil)
	if err != nil || b != nil {
		t.Fatalf("files-only component: got %q, %v; want nil, nil", b, err)
	}
}

func TestUnitRejects(t *testing.T) {
	cases := []struct {
		name string
		svc  manifests.Service
		want error
	}{
		{"newline in exec", manifests.Service{Exec: "/bin/app\n/bin/other"}, ErrUnitNewline},
		{"newline from a template", manifests.Service{Exec: `/bin/app {{ "a\nb" }}`}, ErrUnitNewline},
		{"control character", manifests.Service{Exec: "/bin/app \x1b[0m"}, ErrUnitControl},
		{"unbalanced double quote", manifests.Service{Exec: `/bin/app "a b`}, ErrUnitQuote},
		{"unbalanced single quote", manifests.Service{Exec: `/bin/app 'a b`}, ErrUnitQuote},
		{"trailing backslash", manifests.Service{Exec: `/bin/app \`}, ErrUnitBackslash},
		{"escaped trailing backslash", manifests.Service{Exec: `/bin/app \\`}, ErrUnitBackslash},
		{"empty exec", manifests.Service{Exec: "  "}, ErrUnitEmpty},
		{"bad user", manifests.Service{Exec: "/bin/app", User: "app user"}, ErrUnitName},
		{"bad group", manifests.Service{Exec: "/bin/app", Group: "%g"}, ErrUnitName},
		{"bad env key", manifests.Service{Exec: "/bin/app", Environment: map[string]string{"A-B": "1"}}, ErrUnitName},
		{"newline in env value", manifests.Service{Exec: "/bin/app", Environment: map[string]string{"A": "1\n2"}}, ErrUnitControl},
		{"bad restart", manifests.Service{Exec: "/bin/app", Restart: "sometimes"}, ErrUnitRestart},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			svc := tc.svc
			_, err := renderFixtureUnit(t, &svc, "m1")
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestUnitAcceptsQuotedAndEscapedCommandLines(t *testing.T) {
	for _, exec := range []string{
		`/bin/sh -c "exec /bin/app --name 'x y'"`,
		`/bin/app a\ b`,
		`/bin/app "quote \" inside"`,
		`/bin/app $PORT ${HOME}`,
	} {
		if _, err := renderFixtureUnit(t, &manifests.Service{Exec: exec}, "m1"); err != nil {
			t.Errorf("%s: %v", exec, err)
		}
	}
}
