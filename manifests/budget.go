package manifests

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/template"
	"text/template/parse"
	"time"
)

// Budgets for executing a manifest's templates. A template is a program:
// `{{range 100000}}{{range 100000}}{{end}}{{end}}` writes nothing and
// would run for hours, and a variable doubled in a loop grows without a
// byte written. So every template execution of one manifest (every file
// and service.exec line, for every node) shares one budget: the steps it
// may take (range iterations and template calls), the bytes it may
// produce (output, plus the strings the print and escape functions
// build), and, as a backstop for work neither counts, its time. A real
// manifest of 10,000 nodes uses under 5% of each; a step costs about
// half a microsecond, so the steps run out within about a second.
const (
	MaxTemplateSteps = 2_000_000
	MaxTemplateBytes = 256 << 20
	MaxTemplateTime  = 10 * time.Second
)

// ErrTemplateBudget is wrapped by the error of a template that went over
// its manifest's budget.
var ErrTemplateBudget = errors.New("templates over budget")

// budget is what the templates of one manifest may still spend. It is
// not safe for concurrent use: a Renderer executes one template at a time.
type budget struct {
	ctx      context.Context
	steps    int
	bytes    int
	deadline time.Time
	err      error // sticky: once over, every later execution fails too
}

func newBudget(ctx context.Context) *budget {
	if ctx == nil {
		ctx = context.Background()
	}
	return &budget{ctx: ctx, steps: MaxTemplateSteps, bytes: MaxTemplateBytes, deadline: time.Now().Add(MaxTemplateTime)}
}

// step charges one range iteration or template call. The clock and the
// context are read every 1024 steps: often enough to stop within
// milliseconds, rarely enough to cost nothing.
func (b *budget) step() error {
	if b.err != nil {
		return b.err
	}
	b.steps--
	if b.steps < 0 {
		b.err = fmt.Errorf("%w: more than %d steps (range iterations and template calls)", ErrTemplateBudget, MaxTemplateSteps)
		return b.err
	}
	if b.steps%1024 == 0 {
		return b.check()
	}
	return nil
}

// check fails once the time is up or the caller gave up.
func (b *budget) check() error {
	if b.err != nil {
		return b.err
	}
	if err := b.ctx.Err(); err != nil {
		b.err = err
		return err
	}
	if time.Now().After(b.deadline) {
		b.err = fmt.Errorf("%w: ran longer than %s", ErrTemplateBudget, MaxTemplateTime)
	}
	return b.err
}

// charge spends n bytes, or fails without spending them.
func (b *budget) charge(n int) error {
	if b.err != nil {
		return b.err
	}
	if n > b.bytes {
		b.err = fmt.Errorf("%w: produce more than %d bytes", ErrTemplateBudget, MaxTemplateBytes)
		return b.err
	}
	b.bytes -= n
	return nil
}

// stepFunc is the function instrument calls at the top of every range
// body and template; it is not meant for manifests (nothing documents it)
// but is harmless when one calls it.
const stepFunc = "droverStep"

// budgetedFuncs replaces the builtins that build strings, so the strings
// a template makes without writing them are charged too. Each checks an
// upper bound of its result before building it: with a 256 MiB string,
// printf "%s%s%s" would otherwise allocate 768 MiB first and be charged after.
func budgetedFuncs(b *budget) template.FuncMap {
	escaper := func(grow int, f func(...any) string) func(...any) (string, error) {
		return func(args ...any) (string, error) {
			if err := b.charge(grow * argBytes(args)); err != nil {
				return "", err
			}
			return f(args...), nil
		}
	}
	return template.FuncMap{
		stepFunc: func() (string, error) { return "", b.step() },
		"print": func(args ...any) (string, error) {
			if err := b.charge(argBytes(args)); err != nil {
				return "", err
			}
			return fmt.Sprint(args...), nil
		},
		"println": func(args ...any) (string, error) {
			if err := b.charge(argBytes(args)); err != nil {
				return "", err
			}
			return fmt.Sprintln(args...), nil
		},
		"printf": func(format string, args ...any) (string, error) {
			if err := b.charge(len(format) + widthBytes(format) + argBytes(args)); err != nil {
				return "", err
			}
			return fmt.Sprintf(format, args...), nil
		},
		// html escapes a byte to at most 5 (&#34;), js to 6 (\u003C),
		// urlquery to 3 (%3C).
		"html":     escaper(5, template.HTMLEscaper),
		"js":       escaper(6, template.JSEscaper),
		"urlquery": escaper(3, template.URLQueryEscaper),
	}
}

// argBytes bounds what formatting args produces: a string or byte slice
// its length (as %s or %q, plus quotes and escapes), anything else what
// fmt makes of it, which is bounded by the manifest (nodes, labels).
func argBytes(args []any) int {
	n := 0
	for _, a := range args {
		switch v := a.(type) {
		case string:
			n += 4*len(v) + 2
		case []byte:
			n += 4*len(v) + 2
		default:
			n += len(fmt.Sprint(v))
		}
		n++ // separators
	}
	return n
}

// widthBytes bounds what the widths and precisions of a format add: fmt
// refuses any above 1e6, so each costs at most that.
func widthBytes(format string) int {
	n := 0
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
		j := i + 1
		for j < len(format) && strings.IndexByte("+-# 0", format[j]) >= 0 {
			j++
		}
		if j < len(format) && (format[j] >= '1' && format[j] <= '9' || format[j] == '*' || format[j] == '.') {
			n += 2_000_000
		}
		i = j
	}
	return n
}

// instrument makes every template of t charge a step when it is called
// and on every iteration of each of its ranges. The call is an action
// node taken from a parsed template, so it is a real node of the tree.
func instrument(t *template.Template, funcs template.FuncMap) error {
	probe, err := template.New(stepFunc).Funcs(funcs).Parse("{{" + stepFunc + "}}")
	if err != nil {
		return err
	}
	call := probe.Tree.Root.Nodes[0]
	for _, tt := range t.Templates() {
		if tt.Tree == nil || tt.Tree.Root == nil {
			continue
		}
		instrumentList(tt.Tree.Root, call)
		tt.Tree.Root.Nodes = append([]parse.Node{call}, tt.Tree.Root.Nodes...)
	}
	return nil
}

func instrumentList(l *parse.ListNode, call parse.Node) {
	if l == nil {
		return
	}
	for _, n := range l.Nodes {
		switch n := n.(type) {
		case *parse.RangeNode:
			instrumentList(n.List, call)
			instrumentList(n.ElseList, call)
			if n.List != nil {
				n.List.Nodes = append([]parse.Node{call}, n.List.Nodes...)
			}
		case *parse.IfNode:
			instrumentList(n.List, call)
			instrumentList(n.ElseList, call)
		case *parse.WithNode:
			instrumentList(n.List, call)
			instrumentList(n.ElseList, call)
		case *parse.ListNode:
			instrumentList(n, call)
		}
	}
}

// nodeIndependent reports whether a template's output cannot depend on
// the node it is rendered for: nothing in it names a field Node, and no
// bare dot or $ hands the whole context (which holds the node) to a
// function, a template or the output. Such a template is rendered once
// per component, not once per node, which keeps a member list over every
// node linear in the nodes instead of quadratic. The test is by name and
// so errs on the side of rendering again.
func nodeIndependent(t *template.Template) bool {
	for _, tt := range t.Templates() {
		if tt.Tree == nil || !independent(tt.Tree.Root) {
			return false
		}
	}
	return true
}

func independent(n parse.Node) bool {
	switch n := n.(type) {
	case nil:
		return true
	case *parse.ListNode:
		if n == nil {
			return true
		}
		for _, e := range n.Nodes {
			if !independent(e) {
				return false
			}
		}
		return true
	case *parse.ActionNode:
		return independent(n.Pipe)
	case *parse.PipeNode:
		if n == nil {
			return true
		}
		for _, c := range n.Cmds {
			if !independent(c) {
				return false
			}
		}
		return true
	case *parse.CommandNode:
		for _, a := range n.Args {
			if !independent(a) {
				return false
			}
		}
		return true
	case *parse.RangeNode:
		return independent(n.Pipe) && independent(n.List) && independent(n.ElseList)
	case *parse.IfNode:
		return independent(n.Pipe) && independent(n.List) && independent(n.ElseList)
	case *parse.WithNode:
		return independent(n.Pipe) && independent(n.List) && independent(n.ElseList)
	case *parse.TemplateNode:
		return independent(n.Pipe)
	case *parse.FieldNode:
		return !namesNode(n.Ident)
	case *parse.VariableNode:
		return !(len(n.Ident) == 1 && n.Ident[0] == "$") && !namesNode(n.Ident)
	case *parse.ChainNode:
		return !namesNode(n.Field) && independent(n.Node) && !isDot(n.Node)
	case *parse.DotNode:
		return false
	case *parse.TextNode, *parse.StringNode, *parse.NumberNode, *parse.BoolNode, *parse.NilNode,
		*parse.IdentifierNode, *parse.CommentNode, *parse.BreakNode, *parse.ContinueNode:
		return true
	default:
		return false // a node kind this test does not know: assume it depends
	}
}

func isDot(n parse.Node) bool { _, ok := n.(*parse.DotNode); return ok }

func namesNode(idents []string) bool {
	for _, id := range idents {
		if id == "Node" {
			return true
		}
	}
	return false
}
