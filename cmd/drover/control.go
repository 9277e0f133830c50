package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/drover-project/drover/api"
	"github.com/drover-project/drover/console"
	"github.com/drover-project/drover/internal/safetext"
	"github.com/drover-project/drover/reconciler/plan"
)

// controlClient is how the commands that change a running daemon
// (suspend, resume, retry, reconcile) reach it: --addr, the console token
// (--token-file or DROVER_TOKEN) and the web config's TLS and basic auth.
type controlClient struct {
	addr, tokenFile string
	access          statusAccess
}

func (c *controlClient) addFlags(cmd *cobra.Command) {
	addAddrFlag(cmd, &c.addr, "address the daemon listens on (HOST:PORT, or https://HOST:PORT under TLS)")
	addTokenFlag(cmd, &c.tokenFile)
	c.access.addFlags(cmd)
}

// errNoToken: a command that changes the daemon was given no token.
var errNoToken = errors.New("this command changes the daemon and needs its console token: pass --token-file FILE or set " + envToken +
	" (the daemon reads it from its own --token-file, or prints a new one at start in its console URL)")

// do sends a request to the daemon and decodes its answer into out;
// anything but a 2xx is an error that says what the daemon refused and
// why, in the operator's words.
func (c *controlClient) do(ctx context.Context, method, path string, body []byte, out any) error {
	token, err := clientToken(c.tokenFile)
	if err != nil {
		return err
	}
	if token == "" && method != http.MethodGet {
		return errNoToken
	}
	client, req, err := c.access.newRequest(method, c.addr, path, body)
	if err != nil {
		return err
	}
	if token != "" {
		// Not Authorization: the web config's basic auth may use it.
		req.Header.Set(console.HeaderToken, token)
	}
	resp, err := client.Do(req.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("no drover daemon answering on %s: %w", c.addr, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s: %w", c.addr, err)
	}
	if resp.StatusCode/100 != 2 {
		return c.refusal(path, resp, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s: the daemon's answer to %s is not what drover %s expects: %w", c.addr, path, version, err)
	}
	return nil
}

// refusal is the error for a daemon's non-2xx answer.
func (c *controlClient) refusal(path string, resp *http.Response, body []byte) error {
	var e api.ErrorResponse
	msg := strings.TrimSpace(string(body))
	jsonErr := json.Unmarshal(body, &e) == nil && e.Error != ""
	if jsonErr {
		msg = e.Error
	}
	msg = safetext.Line(msg)
	switch {
	case resp.StatusCode == http.StatusUnauthorized && jsonErr && strings.Contains(msg, console.ErrBadToken.Error()):
		return fmt.Errorf("%s refused the console token: %s (check --token-file or %s)", c.addr, msg, envToken)
	case resp.StatusCode == http.StatusUnauthorized && jsonErr:
		return fmt.Errorf("%s refused the request: %s (pass --token-file or set %s)", c.addr, msg, envToken)
	case resp.StatusCode == http.StatusUnauthorized:
		// Not the console's guard: the web config's basic auth.
		return fmt.Errorf("%s: %s: %s (the daemon's web config wants --user and --password-file)", c.addr, resp.Status, msg)
	case (resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed) && !jsonErr:
		return fmt.Errorf("%s has no %s (%s): is it an older drover daemon?", c.addr, path, resp.Status)
	}
	return fmt.Errorf("%s: %s", c.addr, msg)
}

func newSuspendCommand() *cobra.Command {
	return newSwitchCommand("suspend", api.PathSuspend, "Stop a running daemon from changing anything; it keeps probing",
		`suspend tells a running daemon to start no action on any node until resume:
it goes on probing every node and reporting (status and metrics say
suspended, drover_suspended 1), and an action already running ends as it
would. The daemon keeps the flag in its state store, so it is still
suspended after a restart (or on the next leader, with etcd).`)
}

func newResumeCommand() *cobra.Command {
	return newSwitchCommand("resume", api.PathResume, "Let a suspended daemon change nodes again",
		`resume lifts suspend: every node is looked at at once and the rollout goes on
from what the nodes are now.`)
}

// newSwitchCommand is suspend or resume: one POST, one line of answer.
func newSwitchCommand(name, path, short, long string) *cobra.Command {
	var c controlClient
	cmd := &cobra.Command{
		Use: name, Short: short, Long: long, Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var resp api.ControlResponse
			if err := c.do(cmd.Context(), http.MethodPost, path, nil, &resp); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %s\n", c.addr, safetext.Line(resp.Message))
			return nil
		},
	}
	c.addFlags(cmd)
	return cmd
}

func newRetryCommand() *cobra.Command {
	var c controlClient
	cmd := &cobra.Command{
		Use:   "retry",
		Short: "Lift a halted rollout for the manifest in force, once the cause is fixed",
		Long: `retry is the operator's word that the cause of a failure is fixed, without
editing the manifest: the daemon lifts the halt of the manifest in force,
forgets the failed actions that hold rollout slots and every node's backoff
after a failed action, and looks at every node again. The rollout then goes
on by its usual rules; a cause that is not fixed fails and halts again.
It is an error when nothing is halted or backing off.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var resp api.ControlResponse
			if err := c.do(cmd.Context(), http.MethodPost, api.PathRetry, nil, &resp); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "%s: %s\n", c.addr, safetext.Line(resp.Message))
			if len(resp.Nodes) > 0 {
				fmt.Fprintf(out, "retried on: %s\n", safetext.Line(strings.Join(resp.Nodes, ", ")))
			}
			return nil
		},
	}
	c.addFlags(cmd)
	return cmd
}

func newReconcileCommand() *cobra.Command {
	var c controlClient
	var nodes []string
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "reconcile [--node NAME]...",
		Short: "Have a running daemon probe nodes now instead of at their interval",
		Long: `reconcile asks a running daemon to probe the named nodes (every node without
--node) at once and act on what it finds, by the rollout's rules, instead
of waiting for their probe interval or backoff. A node backing off after a
failed action is probed but starts nothing before its backoff ends (drover
retry ends it).

It then waits, up to --wait, until each node's probe has landed and prints
what it found; --wait 0 returns once the nodes are queued. It exits 1 when
a node could not be probed (unreachable) or the wait ran out.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			body, err := json.Marshal(api.ReconcileRequest{Nodes: nodes})
			if err != nil {
				return err
			}
			var resp api.ControlResponse
			if err := c.do(cmd.Context(), http.MethodPost, api.PathReconcile, body, &resp); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "%s: %s\n", c.addr, safetext.Line(resp.Message))
			if resp.Suspended {
				fmt.Fprintln(out, "the daemon is suspended: it probes, and changes nothing before drover resume")
			}
			if wait <= 0 {
				return nil
			}
			st, err := c.waitProbed(cmd.Context(), resp, nodes, wait)
			if err != nil {
				return err
			}
			writeNodeTable(out, st)
			for _, n := range st {
				if !n.Reachable {
					return &exitError{code: 1}
				}
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&nodes, "node", nil, "a node to probe now, by its name in the manifest (repeatable; default: every node)")
	cmd.Flags().DurationVar(&wait, "wait", 2*time.Minute, "how long to wait for the probes to land (0: do not wait)")
	c.addFlags(cmd)
	return cmd
}

// waitProbed polls the daemon's status until every queued node's last
// probe attempt is at or after resp.QueuedAt, and returns their status.
func (c *controlClient) waitProbed(ctx context.Context, resp api.ControlResponse, named []string, wait time.Duration) ([]plan.NodeStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	path := api.PathStatus
	if len(named) > 0 {
		q := url.Values{"node": resp.Nodes}
		path += "?" + q.Encode()
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		var st plan.ClusterStatus
		if err := c.do(ctx, http.MethodGet, path, nil, &st); err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("the probes did not land within --wait %s", wait)
			}
			return nil, err
		}
		var pending []string
		for _, n := range st.Nodes {
			if n.LastProbeAttempt.Before(resp.QueuedAt) {
				pending = append(pending, n.Name)
			}
		}
		if len(pending) == 0 {
			return st.Nodes, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("the probes of %s did not land within --wait %s", safetext.Line(strings.Join(pending, ", ")), wait)
		case <-tick.C:
		}
	}
}
