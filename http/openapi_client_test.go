package http

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	// The runtime of the client generated below. Importing it keeps it in
	// go.mod, so that the generated client builds from the module cache,
	// offline.
	_ "github.com/oapi-codegen/runtime"
)

// TestOpenAPIGeneratesClient generates a Go client from the spec the
// server serves, with the generator's defaults (no configuration, as a
// user's first try would), and compiles it. Names in the spec that collide
// once turned into Go types (a parameter and a schema both called Status)
// make the generator fail.
func TestOpenAPIGeneratesClient(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatalf("the go command is needed to run the generator: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()

	b := setup(t, Config{})
	rec := b.do(t, request{method: "GET", target: "/openapi.yaml"})
	require.Equal(t, 200, rec.Code)

	root := moduleRoot(t)
	dir := t.TempDir()
	spec := filepath.Join(dir, "openapi.yaml")
	require.NoError(t, os.WriteFile(spec, rec.Body.Bytes(), 0o600))

	// The generator is the module's tool dependency, run from the module.
	gen := exec.CommandContext(ctx, "go", "tool", "oapi-codegen",
		"-generate", "types,client", "-package", "troupeclient", spec)
	gen.Dir = root
	var stderr bytes.Buffer
	gen.Stderr = &stderr
	code, err := gen.Output()
	require.NoError(t, err, "oapi-codegen: %s", stderr.String())
	require.NoError(t, os.WriteFile(filepath.Join(dir, "client.go"), code, 0o600))

	// The client builds as a module of its own with this module's
	// requirements, so it compiles against the versions (and module cache)
	// this module uses.
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	require.NoError(t, err)
	gomod = regexp.MustCompile(`(?m)^module .*$`).ReplaceAll(gomod, []byte("module example.com/troupeclient"))
	gomod = regexp.MustCompile(`(?m)^tool (\([^)]*\)|.*)$`).ReplaceAll(gomod, nil)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), gomod, 0o600))
	gosum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.sum"), gosum, 0o600))

	build := exec.CommandContext(ctx, "go", "vet", ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "GOWORK=off")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "the generated client does not compile:\n%s", out)
}

// moduleRoot is the directory of this module's go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	require.NoError(t, err)
	gomod := string(bytes.TrimSpace(out))
	require.NotEmpty(t, gomod)
	require.NotEqual(t, os.DevNull, gomod)
	return filepath.Dir(gomod)
}
