package state

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The writer child: TestMain runs it instead of the tests when asked.
const writerEnv = "DROVER_STATE_CRASH_WRITER"

func TestMain(m *testing.M) {
	if path := os.Getenv(writerEnv); path != "" {
		os.Exit(crashWriter(path))
	}
	os.Exit(m.Run())
}

// crashWriter writes numbered records as fast as it can, from the first
// number the store does not hold yet, and prints each number once its Put
// has returned: what it printed is what the store promised to keep.
func crashWriter(path string) int {
	s, err := OpenBolt(path, 5*time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	next := 0
	if v, err := s.Get("last"); err == nil {
		n, _ := strconv.Atoi(string(v))
		next = n + 1
	}
	out := bufio.NewWriter(os.Stdout)
	for i := next; ; i++ {
		// Each number is two writes: its own record and "last".
		if err := s.Put(recKey(i), recValue(i)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		if err := s.Put("last", []byte(strconv.Itoa(i))); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		fmt.Fprintln(out, i)
		out.Flush()
	}
}

func recKey(i int) string { return fmt.Sprintf("rec/%08d", i) }

// recValue spans several pages, so a kill lands inside a write often.
func recValue(i int) []byte {
	seed := sha256.Sum256([]byte(strconv.Itoa(i)))
	return []byte(strings.Repeat(fmt.Sprintf("%x", seed), 300))
}

// TestBoltSurvivesSIGKILLDuringWrites kills a writing process at random
// moments, several times over one file, and checks after each kill that
// the store opens and holds every record the writer was told was written,
// intact, plus at most the one it was writing.
func TestBoltSurvivesSIGKILLDuringWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	acked := -1
	for round := range 4 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), writerEnv+"="+path)
		cmd.Stderr = os.Stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		// Let it write a while, then kill it at a random moment.
		target := acked + 20 + rand.N(30)
		for sc.Scan() {
			n, _ := strconv.Atoi(sc.Text())
			acked = n
			if n >= target {
				break
			}
		}
		time.Sleep(time.Duration(rand.N(3000)) * time.Microsecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		for sc.Scan() { // what it acknowledged before it died
			acked, _ = strconv.Atoi(sc.Text())
		}
		_ = cmd.Wait()
		if acked < target {
			t.Fatalf("round %d: the writer stopped at %d before it was killed", round, acked)
		}

		s, err := OpenBolt(path, time.Second)
		if err != nil {
			t.Fatalf("round %d: reopen after SIGKILL: %v", round, err)
		}
		recs, err := s.List("rec/")
		if err != nil {
			t.Fatal(err)
		}
		// Every acknowledged record, intact; at most one more.
		if len(recs) != acked+1 && len(recs) != acked+2 {
			t.Fatalf("round %d: %d records after %d acknowledged", round, len(recs), acked+1)
		}
		for i, r := range recs {
			if r.Key != recKey(i) || string(r.Value) != string(recValue(i)) {
				t.Fatalf("round %d: record %d is %q (%d bytes), damaged or out of place", round, i, r.Key, len(r.Value))
			}
		}
		last, err := s.Get("last")
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if n, _ := strconv.Atoi(string(last)); n != acked && n != acked+1 {
			t.Fatalf("round %d: last = %s, acknowledged %d", round, last, acked)
		}
		t.Logf("round %d: killed after %d acknowledged, %d records kept", round, acked+1, len(recs))
		acked, _ = strconv.Atoi(string(last)) // the next writer goes on from there
		s.Close()
	}
}
