package manifests

import (
	"bytes"
	"fmt"
	"io"
)

// WriteNodeFiles prints rendered files for people (drover render, golden
// tests): a header line with the path on the node, the component, the
// mode and the sha256, then the content. Content not ending in a newline
// is marked as diff marks it, so the printed bytes stay exact.
func WriteNodeFiles(w io.Writer, files []NodeFile) error {
	var b bytes.Buffer
	for _, f := range files {
		fmt.Fprintf(&b, "==> %s (component %s, mode %04o, sha256 %s) <==\n", f.Path, f.Component, f.Mode&ModeBits, f.Digest())
		b.Write(f.Content)
		if len(f.Content) > 0 && !bytes.HasSuffix(f.Content, []byte("\n")) {
			b.WriteString("\n\\ No newline at end of file\n")
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}
