// Package config reads hikeshi.yaml. Each optional part of the hub owns one
// top-level section and decodes it itself, strictly, so a typo in a key is
// an error that names the key instead of a setting silently ignored.
// Secrets never live in the file: a section names the environment variable
// that holds each one.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// File is a parsed configuration file.
type File struct {
	path     string
	sections map[string]yaml.Node
}

// Empty is the configuration with no file: every optional part is off.
func Empty() *File { return &File{sections: map[string]yaml.Node{}} }

// Load reads path. A missing file is an error only when required is set
// (the operator named it explicitly).
func Load(path string, required bool) (*File, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && !required {
		return Empty(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, b)
}

// Parse reads a configuration from b; path is used in messages.
func Parse(path string, b []byte) (*File, error) {
	f := &File{path: path, sections: map[string]yaml.Node{}}
	if len(bytes.TrimSpace(b)) == 0 {
		return f, nil
	}
	var doc map[string]yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	f.sections = doc
	return f, nil
}

// Path is the file the configuration came from ("" for none).
func (f *File) Path() string { return f.path }

// Has reports whether the file has a section.
func (f *File) Has(name string) bool {
	_, ok := f.sections[name]
	return ok
}

// Section decodes section name into v (a pointer to a struct with yaml
// tags, holding its defaults). Unknown keys are errors. It reports whether
// the section was present.
func (f *File) Section(name string, v any) (bool, error) {
	n, ok := f.sections[name]
	if !ok {
		return false, nil
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	if err := enc.Encode(&n); err != nil {
		return true, fmt.Errorf("config %s: section %s: %w", f.path, name, err)
	}
	dec := yaml.NewDecoder(&buf)
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return true, fmt.Errorf("config %s: section %s: %w", f.path, name, err)
	}
	return true, nil
}

// CheckSections fails when the file has a top-level section nobody reads.
func (f *File) CheckSections(known []string) error {
	var unknown []string
	for name := range f.sections {
		if !slices.Contains(known, name) {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	return fmt.Errorf("config %s: unknown section(s) %s (known: %s)", f.path, strings.Join(unknown, ", "), strings.Join(known, ", "))
}

// Secret reads a secret from the environment variable env names. An empty
// env means the secret is not configured.
func Secret(section, field, env string) (string, error) {
	if env == "" {
		return "", fmt.Errorf("%s.%s: name the environment variable that holds it", section, field)
	}
	v, ok := os.LookupEnv(env)
	if !ok || strings.TrimSpace(v) == "" {
		return "", fmt.Errorf("%s.%s: environment variable %s is not set", section, field, env)
	}
	return strings.TrimSpace(v), nil
}
