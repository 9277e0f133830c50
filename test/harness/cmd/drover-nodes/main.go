// Command drover-nodes boots test nodes by hand, for demos and debugging
// drover against real OpenSSH nodes:
//
//	drover-nodes up [--kind systemd|light] [--name PREFIX] [--install-root DIR] N
//	    boot N nodes, print their manifest blocks and paths, stay in the
//	    foreground until Ctrl-C (SIGINT) or SIGTERM, then tear them down
//	drover-nodes down [--all]
//	    remove what dead runs left behind; --all also tears down running clusters
//	drover-nodes artifacts
//	    build (or reuse) the test artifacts and print them
//	drover-nodes image
//	    build (or reuse) the systemd nodes' Debian image and print its path
//
// Must run as root.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/drover-project/drover/test/harness"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch args[0] {
	case "up":
		err = up(ctx, args[1:], stdout, stderr)
	case "down":
		err = down(ctx, args[1:], stdout)
	case "artifacts":
		err = artifacts(ctx, stdout)
	case "image":
		err = image(ctx, stdout, stderr)
	case "-h", "--help", "help":
		usage(stdout)
		return 0
	default:
		usage(stderr)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "drover-nodes:", err)
		return 1
	}
	return 0
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  drover-nodes up [--kind systemd|light] [--name PREFIX] [--install-root DIR] N
  drover-nodes down [--all]
  drover-nodes artifacts
  drover-nodes image
`)
}

func up(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	fs.SetOutput(stderr)
	kind := fs.String("kind", harness.KindSystemd, "node kind: systemd or light")
	name := fs.String("name", "dn", "cluster name prefix")
	installRoot := fs.String("install-root", harness.DefaultInstallRoot, "light nodes: where each node sees its private dir")
	roles := fs.String("roles", "", "a role to give every node in the printed nodes block (optional)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("up: want exactly one argument, the number of nodes")
	}
	n, err := strconv.Atoi(fs.Arg(0))
	if err != nil || n <= 0 {
		return fmt.Errorf("up: bad node count %q", fs.Arg(0))
	}
	opts := harness.Options{
		N:           n,
		Name:        *name,
		InstallRoot: *installRoot,
		Logf: func(format string, a ...any) {
			fmt.Fprintf(stderr, format+"\n", a...)
		},
	}
	start := time.Now()
	var c *harness.Cluster
	switch *kind {
	case harness.KindSystemd:
		c, err = harness.BootSystemd(ctx, opts)
	case harness.KindLight:
		c, err = harness.BootLight(ctx, opts)
	default:
		return fmt.Errorf("up: unknown kind %q", *kind)
	}
	if err != nil {
		return err
	}
	var roleFn func(int) []string
	if *roles != "" {
		roleFn = func(int) []string { return []string{*roles} }
	}
	fmt.Fprintf(stdout, "# cluster %s: %d %s nodes up in %v\n", c.Name, len(c.Nodes), c.Kind, time.Since(start).Round(time.Millisecond))
	fmt.Fprintf(stdout, "# state dir:   %s\n", c.Dir)
	fmt.Fprintf(stdout, "# identity:    %s\n", c.IdentityFile)
	fmt.Fprintf(stdout, "# known_hosts: %s\n", c.KnownHostsFile)
	if len(c.Nodes) > 0 {
		if args, err := c.SSHArgs(c.Nodes[0].Name); err == nil {
			fmt.Fprintf(stdout, "# try:         %s\n", shellJoin(args))
		}
	}
	fmt.Fprint(stdout, c.SSHYAML())
	fmt.Fprint(stdout, c.NodesYAML(roleFn))
	fmt.Fprintln(stdout, "# Ctrl-C to tear down")

	<-ctx.Done()
	fmt.Fprintln(stderr, "drover-nodes: tearing down", c.Name)
	return c.Close()
}

func down(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("down", flag.ContinueOnError)
	all := fs.Bool("all", false, "also tear down clusters whose owner process still runs")
	if err := fs.Parse(args); err != nil {
		return err
	}
	removed, err := harness.Cleanup(ctx, "", *all)
	sort.Strings(removed)
	for _, r := range removed {
		fmt.Fprintln(stdout, "removed", r)
	}
	if err == nil && len(removed) == 0 {
		fmt.Fprintln(stdout, "nothing to clean up")
	}
	return err
}

func artifacts(ctx context.Context, stdout io.Writer) error {
	arts, err := harness.Artifacts(ctx)
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(arts))
	for k := range arts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		a := arts[k]
		fmt.Fprintf(stdout, "%-20s %-7s %s %s\n", k, a.Version, a.SHA256, a.Path)
	}
	return nil
}

// shellJoin quotes argv for pasting into a shell, only where needed.
func shellJoin(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:@,+") == "" {
			out[i] = a
		} else {
			out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(out, " ")
}

func image(ctx context.Context, stdout, stderr io.Writer) error {
	path, err := harness.BuildImage(ctx, harness.Options{
		Logf: func(format string, a ...any) { fmt.Fprintf(stderr, format+"\n", a...) },
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, path)
	return nil
}
