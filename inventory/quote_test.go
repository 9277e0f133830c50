package inventory

import (
	"math/rand"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"testing/quick"
)

// shEcho has a real sh print its arguments back, NUL-terminated.
func shEcho(t testing.TB, args ...string) []string {
	t.Helper()
	script := "printf '%s\\0'"
	for _, a := range args {
		script += " " + Quote(a)
	}
	out, err := exec.Command("/bin/sh", "-c", script).Output()
	if err != nil {
		t.Fatalf("sh %q: %v", script, err)
	}
	got := strings.Split(string(out), "\x00")
	return got[:len(got)-1]
}

// shellish makes strings rich in what breaks quoting: quotes, $, `,
// backslashes, globs, separators, newlines, spaces and non-ASCII bytes
// (never NUL, which no argv can hold).
func shellish(r *rand.Rand) string {
	const alphabet = "a'\"$`\\*?[]{}~#;&|<>()!= \t\n%@,.-_/:+é"
	var b strings.Builder
	for range r.Intn(40) {
		if r.Intn(8) == 0 {
			b.WriteByte(byte(1 + r.Intn(255)))
			continue
		}
		b.WriteByte(alphabet[r.Intn(len(alphabet))])
	}
	return b.String()
}

// TestQuoteRoundTripsThroughSh checks 1500 generated strings, 50 per sh.
func TestQuoteRoundTripsThroughSh(t *testing.T) {
	batch := func(vals []reflect.Value, r *rand.Rand) {
		args := make([]string, 50)
		for i := range args {
			args[i] = shellish(r)
		}
		vals[0] = reflect.ValueOf(args)
	}
	roundTrips := func(args []string) bool { return reflect.DeepEqual(shEcho(t, args...), args) }
	if err := quick.Check(roundTrips, &quick.Config{MaxCount: 30, Values: batch}); err != nil {
		t.Error(err)
	}
}

func FuzzQuote(f *testing.F) {
	for _, seed := range []string{"", "plain", "it's", `a"b`, "$(reboot)", "`id`", `back\slash`, "new\nline", "--", "-n", "*", "é", "'''"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.IndexByte(s, 0) >= 0 {
			t.Skip("NUL cannot be in an argument")
		}
		if got := shEcho(t, s); len(got) != 1 || got[0] != s {
			t.Errorf("Quote(%q) = %s came back as %q", s, Quote(s), got)
		}
	})
}
