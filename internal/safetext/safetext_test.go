package safetext

import "testing"

func TestLine(t *testing.T) {
	cases := map[string]string{
		"plain text, ünïcode ✓":            "plain text, ünïcode ✓",
		"\x1b]0;pwned\a":                   `\x1b]0;pwned\x07`,
		"\x1b[2J\x1b[Hall nodes converged": `\x1b[2J\x1b[Hall nodes converged`,
		"ok\rFAKE":                         `ok\x0dFAKE`,
		"a\nnode n9 converged":             `a\x0anode n9 converged`,
		"tab\there":                        `tab\x09here`,
		"\u009b31m C1 CSI":                 `\u009b31m C1 CSI`,
		"right-to-left \u202eevil":         `right-to-left \u202eevil`,
		"bad utf8 \xff\xfe":                `bad utf8 \xff\xfe`,
		"del \x7f":                         `del \x7f`,
	}
	for in, want := range cases {
		if got := Line(in); got != want {
			t.Errorf("Line(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTextKeepsLines(t *testing.T) {
	if got, want := Text("line 1\n\tline 2\x1b[2J"), "line 1\n\tline 2\\x1b[2J"; got != want {
		t.Errorf("Text = %q, want %q", got, want)
	}
}
