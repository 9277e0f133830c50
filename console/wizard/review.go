package wizard

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/drover-project/drover/inventory"
	"github.com/drover-project/drover/manifests"
	"github.com/drover-project/drover/reconciler"
	"github.com/drover-project/drover/reconciler/plan"
)

// ProblemJSON is a validation problem as the page shows it.
type ProblemJSON struct {
	Path     string `json:"path"`
	Message  string `json:"message"`
	Severity string `json:"severity"` // error or warning
}

// Review is the manifest the wizard would write, what validation says of
// it, and the plan drover would carry out.
type Review struct {
	Manifest string        `json:"manifest"`
	Valid    bool          `json:"valid"`
	Problems []ProblemJSON `json:"problems"`
	// Plan is `drover plan`'s text, when the manifest is valid.
	Plan      string `json:"plan,omitempty"`
	PlanError string `json:"planError,omitempty"`
	// BaseHash is the sha256 of the manifest file now ("" when there is
	// none); write refuses when the file no longer has it.
	BaseHash       string `json:"baseHash"`
	ManifestPath   string `json:"manifestPath"`
	ManifestExists bool   `json:"manifestExists"`
}

// checked is a manifest that passed the daemon's own checks.
type checked struct {
	loaded  *manifests.Loaded
	desired *plan.Desired
}

// check runs exactly what the daemon runs on a manifest it reads from the
// watched path: LoadBytes (parse, defaults, validate) and Compile
// (templates rendered for every node, dependency order). Warnings are
// returned with the problems; err is set when anything blocks.
func (w *Wizard) check(data []byte) (*checked, manifests.Problems, error) {
	l, err := manifests.LoadBytes(w.opts.ManifestPath, data)
	var invalid *manifests.InvalidError
	switch {
	case errors.As(err, &invalid):
		return nil, invalid.Problems, err
	case err != nil:
		return nil, manifests.Problems{{Path: "(document)", Message: err.Error()}}, err
	}
	ps := append(manifests.Problems{}, l.Warnings...)
	ps = append(ps, manifests.MissingArtifacts(l)...)
	d, err := plan.Compile(l)
	if err != nil {
		return nil, append(ps, manifests.Problem{Path: "(compile)", Message: err.Error()}), err
	}
	return &checked{loaded: l, desired: d}, ps, nil
}

// review builds (or takes, when the operator edited it) the manifest,
// checks it, and plans it against the nodes.
func (w *Wizard) review(ctx context.Context, s *Setup, edited string) Review {
	r := Review{ManifestPath: w.opts.ManifestPath}
	r.BaseHash, r.ManifestExists = w.currentHash()
	var data []byte
	var buildProblems manifests.Problems
	if s != nil {
		c, ps := w.build(*s)
		buildProblems = ps
		b, err := marshalManifest(c)
		if err != nil {
			r.Problems = []ProblemJSON{{Path: "(document)", Message: err.Error(), Severity: "error"}}
			return r
		}
		data = b
	} else {
		data = []byte(edited)
	}
	r.Manifest = string(data)
	ck, ps, err := w.check(data)
	r.Problems = problemsJSON(append(buildProblems, ps...))
	r.Valid = err == nil && !buildProblems.HasErrors()
	if err != nil {
		return r
	}
	plan, err := w.plan(ctx, ck)
	if err != nil {
		r.PlanError = err.Error()
		return r
	}
	r.Plan = plan
	return r
}

// plan is `drover plan`: probe every node, diff, print as text.
func (w *Wizard) plan(ctx context.Context, ck *checked) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, w.opts.PlanTimeout)
	defer cancel()
	runner, closeRunner, err := w.opts.NewRunner(ck.loaded.Cluster.Spec.SSH)
	if err != nil {
		return "", fmt.Errorf("ssh settings: %w", err)
	}
	defer closeRunner()
	p := reconciler.ProbeAndDiff(ctx, runner, ck.desired, ck.loaded.Cluster.Spec.SSH.Concurrency)
	var b bytes.Buffer
	if err := plan.WritePlanText(&b, p); err != nil {
		return "", err
	}
	return b.String(), nil
}

// poolRunner is the default Options.NewRunner: the SSH pool the daemon
// would build from the same settings.
func poolRunner(s manifests.SSH, opts Options) (inventory.Runner, func(), error) {
	cfg, err := inventory.PoolConfig(s, opts.SSHConfigFile, opts.Log.Named("ssh"))
	if err != nil {
		return nil, nil, err
	}
	pool, err := inventory.NewPool(cfg, opts.Log.Named("ssh"))
	if err != nil {
		return nil, nil, err
	}
	return pool, func() { pool.Close() }, nil
}

func problemsJSON(ps manifests.Problems) []ProblemJSON {
	out := make([]ProblemJSON, 0, len(ps))
	for _, p := range ps {
		sev := "error"
		if p.Severity == manifests.SeverityWarning {
			sev = "warning"
		}
		out = append(out, ProblemJSON{Path: p.Path, Message: p.Message, Severity: sev})
	}
	return out
}
