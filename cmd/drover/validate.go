package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/drover-project/drover/manifests"
)

func newValidateCommand() *cobra.Command {
	var files []string
	cmd := &cobra.Command{
		Use:   "validate -f FILE [-f FILE...]",
		Short: "Check manifests and list every problem with its field path",
		Long: `validate parses, defaults and validates each manifest (and its inventory
file) exactly as the daemon would, and prints every problem at once, each
with its field path. It exits 1 when any manifest has an error; warnings
are printed but do not fail it.`,
		Example: "  drover validate -f examples/dcos/cluster.yaml",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			failed := false
			for _, f := range files {
				if !validateFile(f, cmd.OutOrStdout(), cmd.ErrOrStderr()) {
					failed = true
				}
			}
			if failed {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&files, "file", "f", nil, "manifest to check (repeatable)")
	_ = cmd.MarkFlagRequired("file")
	_ = cmd.MarkFlagFilename("file", "yaml", "yml")
	return cmd
}

// validateFile prints the verdict on one manifest and reports whether it is usable.
func validateFile(path string, stdout, stderr io.Writer) bool {
	l, ok := loadManifest(path, stderr)
	if !ok {
		return false
	}
	c := l.Cluster
	fmt.Fprintf(stdout, "%s: valid (%d nodes, %d components, generation %s)\n",
		path, len(c.Spec.Nodes), len(c.Spec.Components), l.Hash[:12])
	printProblems(stdout, path, l.Warnings)
	printProblems(stdout, path, manifests.MissingArtifacts(l))
	return true
}

// loadManifest loads a manifest, printing every problem to w when it is
// not usable.
func loadManifest(path string, w io.Writer) (*manifests.Loaded, bool) {
	l, err := manifests.Load(path)
	var invalid *manifests.InvalidError
	switch {
	case errors.As(err, &invalid):
		printProblems(w, path, invalid.Problems)
		return nil, false
	case err != nil:
		fmt.Fprintln(w, err)
		return nil, false
	}
	return l, true
}

// printProblems writes one problem a line, prefixed with the file, as
// compilers do, so editors and grep can use the output.
func printProblems(w io.Writer, path string, ps manifests.Problems) {
	for _, p := range ps {
		fmt.Fprintf(w, "%s: %s\n", path, p)
	}
}
