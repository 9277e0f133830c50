package inventory

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drover-project/drover/internal/sshtest"
)

func mustQuery(t testing.TB, p *Pool, tg Target, script string) Result {
	t.Helper()
	res, err := p.Query(ctxT(t), tg, "", script)
	if err != nil {
		t.Fatalf("Query %q: %v", script, err)
	}
	return res
}

// TestQueryKeepsOneShell: queries run one after another in one session,
// with what Run would give (streams, exit code), and the shell keeps
// what a script left for the next one.
func TestQueryKeepsOneShell(t *testing.T) {
	p, f, tg := poolNode(t, sshtest.Options{})

	res := mustQuery(t, p, tg, `kept=41; printf 'out'; printf 'err' >&2; (exit 3)`)
	if string(res.Stdout) != "out" || string(res.Stderr) != "err" || res.ExitCode != 3 {
		t.Errorf("first = %q %q %d", res.Stdout, res.Stderr, res.ExitCode)
	}
	res = mustQuery(t, p, tg, `echo "$((kept + 1))"; echo two; echo >&2`)
	if string(res.Stdout) != "42\ntwo\n" || string(res.Stderr) != "\n" || res.ExitCode != 0 {
		t.Errorf("second = %q %q %d", res.Stdout, res.Stderr, res.ExitCode)
	}
	// Output that looks like the frame's end is data: the marker is new
	// and random for every script.
	fake := "x\n0123456789abcdef0123456789abcdef 0\n\n"
	res = mustQuery(t, p, tg, `printf '%s' '`+fake+`'; cat`)
	if string(res.Stdout) != fake || res.ExitCode != 0 {
		t.Errorf("fake marker = %q %d", res.Stdout, res.ExitCode)
	}
	big := mustQuery(t, p, tg, `head -c 300000 /dev/zero | tr '\0' y; head -c 70000 /dev/zero | tr '\0' z >&2`)
	if len(big.Stdout) != 300000 || len(big.Stderr) != 70000 || strings.Trim(string(big.Stdout), "y") != "" {
		t.Errorf("big output: %d / %d bytes", len(big.Stdout), len(big.Stderr))
	}
	if st := f.Server.Stats(); st.Sessions != 1 || st.Authenticated != 1 {
		t.Errorf("server saw %+v, want one session on one connection", st)
	}
}

// TestQueryShellEnds: a script that ends the shell gets Run's answer, and
// the next query starts a new shell.
func TestQueryShellEnds(t *testing.T) {
	p, f, tg := poolNode(t, sshtest.Options{})

	mustQuery(t, p, tg, "true")
	mustQuery(t, p, tg, "true") // the shell is set up
	res := mustQuery(t, p, tg, "echo bye; exit 7")
	if string(res.Stdout) != "bye\n" || res.ExitCode != 7 {
		t.Errorf("exit = %q %d, want Run's answer", res.Stdout, res.ExitCode)
	}
	res = mustQuery(t, p, tg, "echo again")
	if string(res.Stdout) != "again\n" {
		t.Errorf("after = %q", res.Stdout)
	}
	// shell, its end, Run's session, the new shell.
	if st := f.Server.Stats(); st.Sessions != 3 || st.Authenticated != 1 {
		t.Errorf("server saw %+v, want 3 sessions on one connection", st)
	}
}

// TestQueryBusyShellRunsAsRun: concurrent queries on one node all answer;
// the ones that find the shell busy run as Run.
func TestQueryBusyShellRunsAsRun(t *testing.T) {
	p, f, tg := poolNode(t, sshtest.Options{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := range 4 {
		wg.Go(func() {
			// The prelude and dq_out work the same way in Run.
			res, err := p.Query(ctxT(t), tg, "say() { dq_out=$1; }", "sleep 0.2; say "+string(rune('a'+i)))
			if err == nil && string(res.Stdout) != string(rune('a'+i)) {
				err = errors.New("wrong output " + string(res.Stdout))
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if st := f.Server.Stats(); st.MaxInFlight < 2 {
		t.Errorf("server saw %+v: the queries did not overlap", st)
	}
}

// TestQueryCancel: a query cut off by its context is ErrTimeout, soon;
// the next query gets a new shell.
func TestQueryCancel(t *testing.T) {
	p, _, tg := poolNode(t, sshtest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := p.Query(ctx, tg, "", "sleep 5")
	wantErr(t, err, ErrTimeout, "timeout")
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("cancelled query returned after %v", d)
	}
	if res := mustQuery(t, p, tg, "echo ok"); string(res.Stdout) != "ok\n" {
		t.Errorf("after cancel = %q", res.Stdout)
	}
}

// TestQueryConnectionCut: a connection lost under a query is
// ErrUnreachable, and the script is not run again on a new connection.
func TestQueryConnectionCut(t *testing.T) {
	p, f, tg := poolNode(t, sshtest.Options{})
	mustQuery(t, p, tg, "true")
	count := filepath.Join(f.Server.Dir(), "runs")
	done := make(chan error, 1)
	go func() {
		_, err := p.Query(ctxT(t), tg, "", "echo run >> "+Quote(count)+"; sleep 3")
		done <- err
	}()
	eventually(t, "script started", func() bool { _, err := os.Stat(count); return err == nil })
	f.Server.DropConnections()
	select {
	case err := <-done:
		wantErr(t, err, ErrUnreachable, "unreachable")
	case <-time.After(10 * time.Second):
		t.Fatal("query did not return after the connection was cut")
	}
	if b, _ := os.ReadFile(count); string(b) != "run\n" {
		t.Errorf("script ran %q times, want once", b)
	}
}

// TestQueryOutputCap: too much output is an error, like Run's.
func TestQueryOutputCap(t *testing.T) {
	p, _, tg := poolNode(t, sshtest.Options{})
	p.maxOutput = 1000
	if _, err := p.Query(ctxT(t), tg, "", "head -c 5000 /dev/zero"); err == nil || !strings.Contains(err.Error(), "larger than 1000 bytes") {
		t.Errorf("err = %v, want the output limit", err)
	}
	if res := mustQuery(t, p, tg, "echo small"); string(res.Stdout) != "small\n" {
		t.Errorf("after = %q", res.Stdout)
	}
}

// TestQuerySudo: a non-root login runs the shell under sudo -n; a sudo
// that refuses is reported as Run reports it.
func TestQuerySudo(t *testing.T) {
	bin := t.TempDir()
	p, f, core := poolNode(t, sshtest.Options{Env: []string{"PATH=" + bin + ":/usr/bin:/bin"}})
	core.User = "core"
	writeScript(t, filepath.Join(bin, "sudo"), `echo "$*" >> "$HOME/sudo.args"; [ "$1" = -n ] || exit 99; shift; exec "$@"`)
	for range 2 {
		if res := mustQuery(t, p, core, `echo "$((6*7))"`); string(res.Stdout) != "42\n" {
			t.Errorf("stdout %q", res.Stdout)
		}
	}
	if args, _ := os.ReadFile(filepath.Join(f.Server.Dir(), "sudo.args")); string(args) != "-n sh\n" {
		t.Errorf("sudo called as %q, want once as -n sh", args)
	}

	p2 := newPool(t, baseConfig(f))
	writeScript(t, filepath.Join(bin, "sudo"), `echo "sudo: a password is required" >&2; exit 1`)
	before := f.Server.Stats().Sessions
	for range 2 {
		_, err := p2.Query(ctxT(t), core, "", "true")
		wantErr(t, err, ErrSudo, "sudo")
	}
	// The refused shell is not tried again on the connection: the shell,
	// then one Run per query.
	if n := f.Server.Stats().Sessions - before; n != 3 {
		t.Errorf("%d sessions for two refused queries, want 3", n)
	}
}

// TestQueryPrelude: a prelude runs once per shell, again only when it
// changes; dq_out is printed after what the script printed; a script that
// writes no stderr and one that does get the same stdout.
func TestQueryPrelude(t *testing.T) {
	p, f, tg := poolNode(t, sshtest.Options{})
	checkPrelude(t, p, tg)
	if st := f.Server.Stats(); st.Sessions != 1 {
		t.Errorf("server saw %+v, want one session", st)
	}
}

func checkPrelude(t *testing.T, p *Pool, tg Target) {
	t.Helper()
	const prelude = "runs=$((${runs:-0} + 1)); say() { dq_out=\"$dq_out$*|\"; }"
	for i := range 3 {
		script := `printf 'head '; say "$runs"; say x`
		wantErr := ""
		if i == 1 {
			script += "; echo oops >&2"
			wantErr = "oops\n"
		}
		res, err := p.Query(ctxT(t), tg, prelude, script)
		if err != nil {
			t.Fatal(err)
		}
		if string(res.Stdout) != "head 1|x|" || string(res.Stderr) != wantErr || res.ExitCode != 0 {
			t.Errorf("query %d = %q %q %d, want %q %q", i, res.Stdout, res.Stderr, res.ExitCode, "head 1|x|", wantErr)
		}
	}
	res, err := p.Query(ctxT(t), tg, prelude+"\n", `say "$runs"`)
	if err != nil || string(res.Stdout) != "2|" {
		t.Errorf("changed prelude: %q, %v; want it run again", res.Stdout, err)
	}
}

// TestQuerySetUpOnSecond: a shell that answers once starts no process
// of its own on the node (a cold probe round, a one-shot probe); its
// stderr file is made with the second script.
func TestQuerySetUpOnSecond(t *testing.T) {
	bin := t.TempDir()
	mktemp, err := exec.LookPath("mktemp")
	if err != nil {
		t.Fatal(err)
	}
	p, f, tg := poolNode(t, sshtest.Options{Env: []string{"PATH=" + bin + ":/usr/bin:/bin"}})
	log := filepath.Join(f.Server.Dir(), "mktemp.log")
	writeScript(t, filepath.Join(bin, "mktemp"), `echo called >> "`+log+`"; exec `+mktemp+` "$@"`)
	calls := func() string { b, _ := os.ReadFile(log); return string(b) }

	res := mustQuery(t, p, tg, `echo one; head -c 70000 /dev/zero | tr '\0' z >&2; echo err1 >&2`)
	if string(res.Stdout) != "one\n" || string(res.Stderr) != strings.Repeat("z", 70000)+"err1\n" {
		t.Errorf("first = %q %q", res.Stdout, res.Stderr)
	}
	if c := calls(); c != "" {
		t.Errorf("the first query ran mktemp: %q", c)
	}
	for i := range 2 {
		res = mustQuery(t, p, tg, `echo more; echo err2 >&2`)
		if string(res.Stdout) != "more\n" || string(res.Stderr) != "err2\n" {
			t.Errorf("query %d = %q %q", i+2, res.Stdout, res.Stderr)
		}
	}
	if c := calls(); c != "called\n" {
		t.Errorf("mktemp calls after three queries: %q, want one", c)
	}
	if st := f.Server.Stats(); st.Sessions != 1 {
		t.Errorf("server saw %+v, want one session", st)
	}
}

// TestQueryShells: the resident shell protocol works whatever sh is on
// the node: dash (Debian), bash (sh on the Red Hat family) and busybox.
func TestQueryShells(t *testing.T) {
	shells := map[string][]string{"dash": {"dash"}, "bash": {"bash"}, "busybox": {"busybox", "sh"}}
	for name, argv := range shells {
		t.Run(name, func(t *testing.T) {
			path, err := exec.LookPath(argv[0])
			if err != nil {
				t.Skipf("%s not installed", argv[0])
			}
			bin := t.TempDir()
			body := "exec " + path
			for _, a := range argv[1:] {
				body += " " + a
			}
			writeScript(t, filepath.Join(bin, "sh"), body+` "$@"`)
			p, f, tg := poolNode(t, sshtest.Options{Env: []string{"PATH=" + bin + ":/usr/bin:/bin"}})
			for i := range 3 {
				res := mustQuery(t, p, tg, fmt.Sprintf("n=$((${n:-0} + 1)); printf 'run %%s\\n' \"$n\"; echo err >&2; (exit %d)", i))
				if want := fmt.Sprintf("run %d\n", i+1); string(res.Stdout) != want || string(res.Stderr) != "err\n" || res.ExitCode != i {
					t.Errorf("query %d = %q %q %d, want %q", i, res.Stdout, res.Stderr, res.ExitCode, want)
				}
			}
			checkPrelude(t, p, tg)
			if st := f.Server.Stats(); st.Sessions != 1 {
				t.Errorf("server saw %+v, want one session", st)
			}
		})
	}
}

// TestQueryPoolGoroutines: a pooled connection with its resident shell
// costs the pool one goroutine of its own (the one noticing the
// connection's end), not one per keepalive timer and stderr reader as
// well: at 10,000 nodes each was 10,000 stacks.
func TestQueryPoolGoroutines(t *testing.T) {
	p, _, tg := poolNode(t, sshtest.Options{})
	idle := len(poolGoroutines()) // the idle reaper
	for range 3 {
		mustQuery(t, p, tg, `echo hi; echo err >&2`)
	}
	// The dial's goroutine ends just after the connection is handed out.
	var stacks []string
	deadline := time.Now().Add(5 * time.Second)
	for stacks = poolGoroutines(); len(stacks) != idle+1 && time.Now().Before(deadline); stacks = poolGoroutines() {
		time.Sleep(5 * time.Millisecond)
	}
	if len(stacks) != idle+1 || !strings.Contains(strings.Join(stacks, "\n"), "inventory.(*Pool).watch") {
		t.Errorf("%d goroutines of the pool's for one connection, want one (watch):\n%s", len(stacks)-idle, strings.Join(stacks, "\n\n"))
	}
}

// poolGoroutines are the stacks of the goroutines running inventory's
// own code (not the tests').
func poolGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "drover/inventory.") && !strings.Contains(g, "inventory.Test") && !strings.Contains(g, "inventory.poolGoroutines") {
			out = append(out, g)
		}
	}
	return out
}

// TestWriteChunked: a request reaches the shell in writes of at most the
// chunk, all of it, in order.
func TestWriteChunked(t *testing.T) {
	var w chunkRecorder
	in := []byte(strings.Repeat("0123456789", 500))
	if err := writeChunked(&w, in, shellWriteChunk); err != nil {
		t.Fatal(err)
	}
	if string(w.all) != string(in) || w.max > shellWriteChunk || w.writes != (len(in)+shellWriteChunk-1)/shellWriteChunk {
		t.Errorf("wrote %d bytes in %d writes of at most %d", len(w.all), w.writes, w.max)
	}
}

type chunkRecorder struct {
	all         []byte
	writes, max int
}

func (w *chunkRecorder) Write(b []byte) (int, error) {
	w.all = append(w.all, b...)
	w.writes++
	w.max = max(w.max, len(b))
	return len(b), nil
}
