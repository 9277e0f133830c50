package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// exitError carries a specific exit code out of a command (plan exits 2
// when changes are pending). Its message, if any, was already printed.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// run builds the command tree, runs it and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	root := newRootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	var ee *exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	default:
		fmt.Fprintln(stderr, "drover:", err)
		return 1
	}
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "drover",
		Short: "Keep a cluster of Linux machines in the state one manifest describes",
		Long: `drover is an agentless daemon that watches a YAML manifest, probes every node
over SSH, and repairs any difference with idempotent install, upgrade,
reconfigure and remove actions, rolled out so quorum services keep their majority.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		// --version prints what `drover version` does.
		Version: versionLine(),
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.PersistentFlags().StringVar(&sshConfigFile, "ssh-config", "",
		"OpenSSH client config to read for what the manifest leaves unset (default: ssh.configFile, else ~/.ssh/config)")
	// One constructor per command, each in its own file.
	root.AddCommand(
		newVersionCommand(),
		newValidateCommand(),
		newRenderCommand(),
		newPlanCommand(),
		newApplyCommand(),
		newDaemonCommand(),
		newStatusCommand(),
		newSuspendCommand(),
		newResumeCommand(),
		newRetryCommand(),
		newReconcileCommand(),
		newProbeCommand(),
		newSchemaCommand(),
		newRulesCommand(),
		newDashboardCommand(),
		newImportCommand(),
		newManCommand(),
	)
	return root
}
