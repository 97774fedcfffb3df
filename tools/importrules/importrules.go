// Package importrules states which packages of the repository may import
// which, and checks an import graph against those rules. Its test checks
// the repository itself, so a change that breaks the layout fails
// make test:
//
//   - events imports only the standard library;
//   - services/incident imports only events and the standard library;
//   - services/module, the module contract, imports only events, incident,
//     config, projection, the standard library and third-party libraries;
//   - a module (a package of cmd/hikeshi's module table, or one under it)
//     reaches neither another module, nor the hub, nor the API server;
//   - nothing in adapters imports services.
package importrules

import (
	"errors"
	"fmt"
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Repo is the import path prefix of the repository's Go modules.
const Repo = "github.com/hikeshi/hikeshi"

// Graph maps each package of the repository to the packages its non-test
// files import.
type Graph map[string][]string

// Violation is one import a rule forbids.
type Violation struct {
	From, To string
	// Via is the chain of repository packages From reaches To through
	// (empty: a direct import).
	Via  []string
	Rule string
}

func (v Violation) String() string {
	s := short(v.From) + " imports " + short(v.To)
	if len(v.Via) > 0 {
		via := make([]string, len(v.Via))
		for i, p := range v.Via {
			via[i] = short(p)
		}
		s += " (through " + strings.Join(via, " → ") + ")"
	}
	return s + ": " + v.Rule
}

func short(p string) string { return strings.TrimPrefix(p, Repo+"/") }

// Std reports whether p is a standard library package: its first path
// element has no dot.
func Std(p string) bool {
	first, _, _ := strings.Cut(p, "/")
	return !strings.Contains(first, ".")
}

// Under reports whether p is pkg or a package below it.
func Under(p, pkg string) bool { return p == pkg || strings.HasPrefix(p, pkg+"/") }

// Rule governs the packages Applies to. Allowed, when set, lists what they
// may import directly; Forbidden names what they must not reach at all,
// directly or through other packages of the repository.
type Rule struct {
	Name      string
	Applies   func(pkg string) bool
	Allowed   func(imp string) bool
	Forbidden func(pkg, imp string) bool
}

// Rules are the repository's rules, given its module packages (the table
// in cmd/hikeshi).
func Rules(modules []string) []Rule {
	p := func(s string) string { return Repo + "/" + s }
	events, incident, contract := p("events"), p("services/incident"), p("services/module")
	moduleOf := func(pkg string) string {
		for _, m := range modules {
			if Under(pkg, m) {
				return m
			}
		}
		return ""
	}
	return []Rule{{
		Name:    "events imports only the standard library",
		Applies: func(pkg string) bool { return Under(pkg, events) },
		Allowed: func(imp string) bool { return Std(imp) || Under(imp, events) },
	}, {
		Name:    "services/incident imports only events and the standard library",
		Applies: func(pkg string) bool { return Under(pkg, incident) },
		Allowed: func(imp string) bool { return Std(imp) || Under(imp, events) || Under(imp, incident) },
	}, {
		Name:    "services/module imports only events, incident, config, projection and libraries outside the repository",
		Applies: func(pkg string) bool { return Under(pkg, contract) },
		Allowed: func(imp string) bool {
			if !strings.HasPrefix(imp, Repo+"/") {
				return true
			}
			return slices.ContainsFunc([]string{events, incident, p("services/config"), p("services/projection"), contract},
				func(ok string) bool { return Under(imp, ok) })
		},
	}, {
		Name:    "a module talks to the others through events: it imports no other module, nor the hub, nor the API server",
		Applies: func(pkg string) bool { return moduleOf(pkg) != "" },
		Forbidden: func(pkg, imp string) bool {
			if m := moduleOf(imp); m != "" && m != moduleOf(pkg) {
				return true
			}
			return Under(imp, p("services/hub")) || Under(imp, p("services/httpapi")) || Under(imp, p("services/cmd"))
		},
	}, {
		Name:      "adapters never import services",
		Applies:   func(pkg string) bool { return Under(pkg, p("adapters")) },
		Forbidden: func(_, imp string) bool { return Under(imp, p("services")) },
	}}
}

// Check returns every import of g that a rule forbids. An import listed in
// ignore ("from -> to", full import paths) is not followed.
func Check(g Graph, rules []Rule, ignore map[string]string) []Violation {
	var out []Violation
	pkgs := make([]string, 0, len(g))
	for pkg := range g {
		pkgs = append(pkgs, pkg)
	}
	slices.Sort(pkgs)
	edges := func(from string) []string {
		var to []string
		for _, imp := range g[from] {
			if _, skip := ignore[from+" -> "+imp]; !skip {
				to = append(to, imp)
			}
		}
		return to
	}
	for _, r := range rules {
		for _, pkg := range pkgs {
			if !r.Applies(pkg) {
				continue
			}
			if r.Allowed != nil {
				for _, imp := range edges(pkg) {
					if !r.Allowed(imp) {
						out = append(out, Violation{From: pkg, To: imp, Rule: r.Name})
					}
				}
			}
			if r.Forbidden != nil {
				out = append(out, reach(pkg, edges, func(imp string) bool { return r.Forbidden(pkg, imp) }, r.Name)...)
			}
		}
	}
	return out
}

// reach walks the imports from pkg breadth first and reports each
// forbidden package it reaches, by its shortest path.
func reach(pkg string, edges func(string) []string, forbidden func(string) bool, rule string) []Violation {
	var out []Violation
	via := map[string][]string{pkg: nil}
	queue := []string{pkg}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, imp := range edges(cur) {
			if _, seen := via[imp]; seen {
				continue
			}
			path := append(slices.Clone(via[cur]), imp)
			via[imp] = path
			if forbidden(imp) {
				out = append(out, Violation{From: pkg, To: imp, Via: path[:len(path)-1], Rule: rule})
				continue // what it imports in turn is its own rule's business
			}
			if strings.HasPrefix(imp, Repo+"/") {
				queue = append(queue, imp)
			}
		}
	}
	return out
}

// Load reads the import graph of the Go modules in the workspace at root
// (the directories go.work uses), from the files the default build
// context compiles, tests left out.
func Load(root string) (Graph, error) {
	dirs, err := workspaceModules(root)
	if err != nil {
		return nil, err
	}
	g := Graph{}
	for _, dir := range dirs {
		modPath, err := modulePath(filepath.Join(root, dir, "go.mod"))
		if err != nil {
			return nil, err
		}
		base := filepath.Join(root, dir)
		err = filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return err
			}
			name := d.Name()
			if p != base && (name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(p, "go.mod")); err == nil && p != base {
				return filepath.SkipDir // another module
			}
			bp, err := build.Default.ImportDir(p, 0)
			var noGo *build.NoGoError
			if errors.As(err, &noGo) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			rel, _ := filepath.Rel(base, p)
			g[path.Join(modPath, filepath.ToSlash(rel))] = bp.Imports
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return g, nil
}

func workspaceModules(root string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(root, "go.work"))
	if err != nil {
		return nil, err
	}
	var dirs []string
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "use"))
		if strings.HasPrefix(line, "./") {
			dirs = append(dirs, strings.Trim(line, "()\t "))
		}
	}
	if len(dirs) == 0 {
		return nil, errors.New("go.work uses no module")
	}
	return dirs, nil
}

func modulePath(gomod string) (string, error) {
	b, err := os.ReadFile(gomod)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if m, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok {
			return strings.Trim(strings.TrimSpace(m), `"`), nil
		}
	}
	return "", fmt.Errorf("%s: no module line", gomod)
}

// TableModules returns the packages of the module table in the Go files of
// dir (cmd/hikeshi): the X of every X.Module listed in a []module.Module
// literal.
func TableModules(dir string) ([]string, error) {
	fset := token.NewFileSet()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			return nil, err
		}
		imports := map[string]string{}
		for _, is := range f.Imports {
			p, _ := strconv.Unquote(is.Path.Value)
			local := path.Base(p)
			if is.Name != nil {
				local = is.Name.Name
			}
			imports[local] = p
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.CompositeLit)
			if !ok || !isModuleSlice(lit.Type) {
				return true
			}
			for _, e := range lit.Elts {
				if sel, ok := e.(*ast.SelectorExpr); ok && sel.Sel.Name == "Module" {
					if x, ok := sel.X.(*ast.Ident); ok && imports[x.Name] != "" {
						out = append(out, imports[x.Name])
					}
				}
			}
			return false
		})
	}
	return out, nil
}

func isModuleSlice(t ast.Expr) bool {
	at, ok := t.(*ast.ArrayType)
	if !ok {
		return false
	}
	sel, ok := at.Elt.(*ast.SelectorExpr)
	return ok && sel.Sel.Name == "Module"
}
