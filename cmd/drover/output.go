package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/drover-project/drover/console"
)

// The output contract every read command keeps (docs/CLI.md): -o text for
// people, -o json and -o yaml for machines. YAML is the JSON document
// converted, so the two carry the same fields under the same names.
const (
	outputText = "text"
	outputJSON = "json"
	outputYAML = "yaml"
)

var outputFormats = []string{outputText, outputJSON, outputYAML}

// addOutputFlag adds -o with the one set of formats; the value is checked
// before the command does anything (checkOutput in PreRunE), so a typo
// fails with exit 1 instead of printing something else.
func addOutputFlag(cmd *cobra.Command, output *string) {
	cmd.Flags().StringVarP(output, "output", "o", outputText, "output format: "+strings.Join(outputFormats, ", "))
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(outputFormats, cobra.ShellCompDirectiveNoFileComp))
	prev := cmd.PreRunE
	cmd.PreRunE = func(c *cobra.Command, args []string) error {
		if err := checkOutput(*output); err != nil {
			return err
		}
		if prev != nil {
			return prev(c, args)
		}
		return nil
	}
}

func checkOutput(format string) error {
	for _, f := range outputFormats {
		if format == f {
			return nil
		}
	}
	return fmt.Errorf("-o %q: must be one of %s", format, strings.Join(outputFormats, ", "))
}

// writeStructured writes v as JSON (indented, one document, a final
// newline) or as the YAML of that JSON.
func writeStructured(w io.Writer, format string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	return writeStructuredJSON(w, format, b)
}

// writeStructuredJSON writes a JSON document already encoded (the
// daemon's status, passed through) in format.
func writeStructuredJSON(w io.Writer, format string, doc []byte) error {
	if format == outputYAML {
		y, err := yaml.JSONToYAML(doc)
		if err != nil {
			return fmt.Errorf("encode output as yaml: %w", err)
		}
		_, err = w.Write(y)
		return err
	}
	doc = bytes.TrimRight(doc, "\n")
	_, err := w.Write(append(doc, '\n'))
	return err
}

// Environment variables for the flags most commands share, so a shell
// session or a CI job sets them once.
const (
	envFile  = "DROVER_FILE"  // -f, the manifest
	envAddr  = "DROVER_ADDR"  // --addr, the daemon's address
	envToken = "DROVER_TOKEN" // the console token itself (--token-file reads it from a file)
)

// defaultAddr is where the daemon listens unless told otherwise.
const defaultAddr = "127.0.0.1:9464"

// envDefault is the environment's value for a flag, or def.
func envDefault(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// addAddrFlag adds --addr, the one name for the daemon's address: where
// `drover daemon` listens and where the client commands find it.
func addAddrFlag(cmd *cobra.Command, addr *string, usage string) {
	cmd.Flags().StringVar(addr, "addr", envDefault(envAddr, defaultAddr), usage+" (env "+envAddr+")")
}

// addTokenFlag adds --token-file, the console token for the daemon's API;
// DROVER_TOKEN gives the token itself. Reads need none today; a daemon
// behind a token-checking proxy, and the commands that change something,
// do.
func addTokenFlag(cmd *cobra.Command, tokenFile *string) {
	cmd.Flags().StringVar(tokenFile, "token-file", "", "file holding the daemon's console token (or env "+envToken+")")
}

// clientToken is the token from --token-file, else DROVER_TOKEN, else "".
func clientToken(tokenFile string) (string, error) {
	if tokenFile != "" {
		t, err := console.ReadTokenFile(tokenFile)
		if err != nil {
			return "", fmt.Errorf("--token-file: %w", err)
		}
		return t, nil
	}
	return os.Getenv(envToken), nil
}
