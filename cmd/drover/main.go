// Command drover keeps a cluster of Linux machines in the state one YAML
// manifest describes.
package main

import (
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
