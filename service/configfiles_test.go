package service

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestLoadConfigResolvesPaths checks relative paths resolve from the
// configuration file's directory, whatever the working directory, and
// that absolute paths, builtin models and data_dir are left alone.
func TestLoadConfigResolvesPaths(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	abs := t.TempDir() // an absolute profiles_dir
	cfgText := "data_dir: ./data\nhttp:\n  token_file: token\nnormalize:\n  profiles_dir: " + abs + "\n" +
		"snmp:\n  targets_file: \"\"\n" +
		"views:\n" + exampleView + "\n" +
		"inference:\n  models:\n    - {name: c, kind: xgboost, view: interface_1m, file: builtin:congestion, threshold: 0.5, action: reroute}\n"
	path := filepath.Join(dir, "netfeat.yaml")
	if err := os.WriteFile(path, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ key, got, want string }{
		{"http.token_file", cfg.HTTP.TokenFile, filepath.Join(dir, "token")},
		{"normalize.profiles_dir", cfg.Normalize.ProfilesDir, abs},
		{"data_dir", cfg.DataDir, "./data"},
		{"inference.models[0].file", cfg.Inference.Models[0].File, "builtin:congestion"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %q, want %q", tc.key, tc.got, tc.want)
		}
	}
}

// exampleView is the interface_1m view of examples/netfeat.yaml, which
// the builtin congestion model scores.
var exampleView = func() string {
	b, err := os.ReadFile(filepath.Join("..", "examples", "netfeat.yaml"))
	if err != nil {
		panic(err)
	}
	var doc struct {
		Views []yaml.Node `yaml:"views"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		panic(err)
	}
	for _, v := range doc.Views {
		out, _ := yaml.Marshal(&v)
		if strings.Contains(string(out), "interface_1m") {
			return "  - " + strings.ReplaceAll(strings.TrimSpace(string(out)), "\n", "\n    ")
		}
	}
	panic("examples/netfeat.yaml has no interface_1m view")
}()

// TestYAMLSyntaxLine checks syntax errors name the line they are on:
// yaml.v3 gives its parser's errors a 0-based line.
func TestYAMLSyntaxLine(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		line       int
	}{
		{"unclosed flow sequence, line 2", "data_dir: x\nlog: [level\nhttp: {}\n", 2},
		{"unclosed flow mapping, line 2", "data_dir: x\nlog: {level: info\nhttp: {}\n", 2},
		{"unclosed at the end of the file", "log:\n  level: [\n", 2},
		{"mapping value in a scalar, line 2", "data_dir: x\nlog: : :\n", 2},
		{"bad indentation, line 3", "data_dir: x\nlog:\n   level: info\n  format: text\n", 4},
		{"block sequence item in a mapping, line 3", "http:\n  listen: x\n- a\n", 3},
		{"first line", "[\n", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig("f.yaml", []byte(tc.yaml))
			ce, ok := err.(ConfigErrors)
			if !ok || len(ce) != 1 || !strings.HasPrefix(ce[0].Msg, "syntax error") {
				t.Fatalf("ParseConfig = %v, want one syntax error", err)
			}
			if ce[0].Line != tc.line {
				t.Fatalf("line %d (%v), want %d", ce[0].Line, ce[0], tc.line)
			}
		})
	}
}

// TestTwinGateScenariosChecked: learning.gate.twin.scenarios is resolved
// from the configuration's directory and must be a directory; a bad
// duration is refused with its line.
func TestTwinGateScenariosChecked(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "scen"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "afile"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, twin, want string
	}{
		{"relative directory", "{scenarios: scen, duration: 9m}", ""},
		{"missing", "{scenarios: nowhere}", "learning.gate.twin.scenarios: stat " + filepath.Join(dir, "nowhere") + ": no such file or directory"},
		{"not a directory", "{scenarios: afile}", "learning.gate.twin.scenarios: " + filepath.Join(dir, "afile") + " is not a directory"},
		{"no scenarios", "{duration: 9m}", "learning.gate.twin.scenarios: required"},
		{"bad duration", "{scenarios: scen, duration: 10s}", "netfeat.yaml:6: learning.gate.twin.duration: must be 1m–24h of virtual time, got 10s"},
		{"not a duration", "{scenarios: scen, duration: soon}", `learning.gate.twin.duration: "soon" is not a duration`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "netfeat.yaml")
			text := "data_dir: ./data\nlearning:\n  gate:\n    twin:\n      " + strings.Trim(strings.ReplaceAll(strings.Trim(tc.twin, "{}"), ", ", "\n      "), " ") + "\n"
			if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, err := LoadConfig(path)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got := cfg.Learning.Gate.Twin.Scenarios; got != filepath.Join(dir, "scen") {
					t.Fatalf("scenarios %q, want it resolved", got)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("LoadConfig: %v, want %q", err, tc.want)
			}
		})
	}
}
