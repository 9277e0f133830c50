package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/drover-project/drover/manifests"
)

func newValidateCommand() *cobra.Command {
	var files []string
	var output string
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
			report := validateReport{Valid: true, Manifests: []validateResult{}}
			for _, f := range files {
				r := validateFile(f)
				report.Valid = report.Valid && r.Valid
				report.Manifests = append(report.Manifests, r)
			}
			if output == outputText {
				for _, r := range report.Manifests {
					printValidateResult(cmd.OutOrStdout(), cmd.ErrOrStderr(), r)
				}
			} else if err := writeStructured(cmd.OutOrStdout(), output, report); err != nil {
				return err
			}
			if !report.Valid {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	var def []string
	if f := os.Getenv(envFile); f != "" {
		def = []string{f}
	}
	cmd.Flags().StringArrayVarP(&files, "file", "f", def, "manifest to check (repeatable; env "+envFile+")")
	if def == nil {
		_ = cmd.MarkFlagRequired("file")
	}
	_ = cmd.MarkFlagFilename("file", "yaml", "yml")
	addOutputFlag(cmd, &output)
	return cmd
}

// validateReport is `drover validate -o json|yaml` (docs/CLI.md).
type validateReport struct {
	Valid     bool             `json:"valid"`
	Manifests []validateResult `json:"manifests"`
}

// validateResult is the verdict on one manifest.
type validateResult struct {
	File  string `json:"file"`
	Valid bool   `json:"valid"`
	// Set when valid.
	Cluster    string `json:"cluster,omitempty"`
	Nodes      int    `json:"nodes"`
	Components int    `json:"components"`
	Generation string `json:"generation,omitempty"`
	// Problems are the errors (when not valid) and the warnings.
	Problems []problemJSON `json:"problems"`
	// Error is a failure that is not about a field: the file cannot be
	// read, or is not YAML.
	Error string `json:"error,omitempty"`
}

// problemJSON is one manifests.Problem in the output contract.
type problemJSON struct {
	File     string `json:"file"`
	Path     string `json:"path"`
	Severity string `json:"severity"` // error or warning
	Message  string `json:"message"`
}

// problemsJSON gives each problem of the manifest at file the file it is
// in: the inventory file's path for problems in its nodes.
func problemsJSON(file string, ps manifests.Problems) []problemJSON {
	out := make([]problemJSON, 0, len(ps))
	for _, p := range ps {
		sev := "error"
		if p.Severity == manifests.SeverityWarning {
			sev = "warning"
		}
		in, path := manifests.ProblemFile(file, p)
		out = append(out, problemJSON{File: in, Path: path, Severity: sev, Message: p.Message})
	}
	return out
}

// validateFile loads one manifest and gives the verdict on it.
func validateFile(path string) validateResult {
	r := validateResult{File: path, Problems: []problemJSON{}}
	l, err := manifests.Load(path)
	var invalid *manifests.InvalidError
	switch {
	case errors.As(err, &invalid):
		file := invalid.Path
		if file == "" {
			file = path
		}
		r.Problems = problemsJSON(file, invalid.Problems)
		return r
	case err != nil:
		r.Error = err.Error()
		return r
	}
	c := l.Cluster
	r.Valid = true
	r.Cluster = c.Metadata.Name
	r.Nodes, r.Components = len(c.Spec.Nodes), len(c.Spec.Components)
	r.Generation = l.Hash
	r.Problems = append(problemsJSON(path, l.Warnings), problemsJSON(path, manifests.MissingArtifacts(l))...)
	return r
}

// printValidateResult is the text form: the verdict on stdout, problems
// one a line prefixed with their file as compilers do, so editors and
// grep can use them; errors of an unusable manifest go to stderr.
func printValidateResult(stdout, stderr io.Writer, r validateResult) {
	if !r.Valid {
		if r.Error != "" {
			fmt.Fprintln(stderr, r.Error)
		}
		printProblemLines(stderr, r.Problems)
		return
	}
	fmt.Fprintf(stdout, "%s: valid (%d nodes, %d components, generation %s)\n",
		r.File, r.Nodes, r.Components, short(r.Generation))
	printProblemLines(stdout, r.Problems)
}

func printProblemLines(w io.Writer, ps []problemJSON) {
	for _, p := range ps {
		if p.Severity == "warning" {
			fmt.Fprintf(w, "%s: warning: %s: %s\n", p.File, p.Path, p.Message)
		} else {
			fmt.Fprintf(w, "%s: %s: %s\n", p.File, p.Path, p.Message)
		}
	}
}

// loadManifest loads a manifest, printing every problem to w when it is
// not usable.
func loadManifest(path string, w io.Writer) (*manifests.Loaded, bool) {
	l, err := manifests.Load(path)
	if err != nil {
		fmt.Fprintln(w, describeLoadError(path, err))
		return nil, false
	}
	return l, true
}

// describeLoadError is why the manifest at path cannot be used: for
// field problems one a line, each prefixed with the file it is in, as
// compilers do, so editors and grep can use the output.
func describeLoadError(path string, err error) error {
	var invalid *manifests.InvalidError
	if !errors.As(err, &invalid) {
		return err
	}
	file := invalid.Path
	if file == "" {
		file = path
	}
	var b strings.Builder
	printProblemLines(&b, problemsJSON(file, invalid.Problems))
	return errors.New(strings.TrimSuffix(b.String(), "\n"))
}
