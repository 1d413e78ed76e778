package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/troupe-go/troupe/webhook"
)

// signatureSection is the runbook's section with the verification snippets.
const signatureSection = "### Verifying webhook signatures"

// snippet returns the first block of lang in the runbook's section on
// webhook signatures.
func snippet(t *testing.T, lang string) string {
	t.Helper()
	readme := readReadme(t)
	start := strings.Index(readme, signatureSection)
	require.GreaterOrEqual(t, start, 0, "README.md has no section %q", signatureSection)
	section := readme[start:]
	if end := strings.Index(section[len(signatureSection):], "\n## "); end >= 0 {
		section = section[:len(signatureSection)+end]
	}
	fence := "```" + lang + "\n"
	i := strings.Index(section, fence)
	require.GreaterOrEqual(t, i, 0, "the section %q has no %s block", signatureSection, lang)
	block := section[i+len(fence):]
	j := strings.Index(block, "```")
	require.GreaterOrEqual(t, j, 0)
	return block[:j]
}

// signature is the Troupe-Signature header that the server sends.
func signature(secret []byte, t time.Time, body []byte) string { return webhook.Sign(secret, t, body) }

// signatureCase is a call the snippets must accept or refuse.
type signatureCase struct {
	name   string
	secret string
	header string
	body   string
	want   bool
}

func signatureCases() []signatureCase {
	secret := []byte("whsec-readme")
	body := `{"id":"0195b3a4-8e5f-7c3d-9a1b-2c3d4e5f6a7b","type":"resize_image","attempt":1,"payload":{"src":"cat.png"}}`
	now := time.Now()
	good := signature(secret, now, []byte(body))
	return []signatureCase{
		{"valid", string(secret), good, body, true},
		{"the body changed", string(secret), good, strings.Replace(body, "cat", "dog", 1), false},
		{"another secret", "whsec-other", good, body, false},
		{"ten minutes old", string(secret), signature(secret, now.Add(-10*time.Minute), []byte(body)), body, false},
		{"no v1", string(secret), "t=" + strconv.FormatInt(now.Unix(), 10), body, false},
		{"garbage", string(secret), "nonsense", body, false},
	}
}

// TestReadmeWebhookSignaturePython runs the runbook's Python snippet.
func TestReadmeWebhookSignaturePython(t *testing.T) {
	t.Parallel()
	python := requireTool(t, "python3")
	script := snippet(t, "python") + `
import sys
secret, header, body = sys.argv[1], sys.argv[2], sys.stdin.buffer.read()
print("true" if verify(secret.encode(), header, body) else "false")
`
	for _, c := range signatureCases() {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
			defer cancel()
			cmd := exec.CommandContext(ctx, python, "-c", script, c.secret, c.header)
			cmd.Stdin = strings.NewReader(c.body)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			require.NoError(t, err, "%s", stderr.String())
			require.Equal(t, strconv.FormatBool(c.want), strings.TrimSpace(string(out)))
		})
	}
}

// TestReadmeWebhookSignatureGo compiles the runbook's Go snippet into a
// program and runs it.
func TestReadmeWebhookSignatureGo(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	verify := "package main\n\nimport (\n\t\"crypto/hmac\"\n\t\"crypto/sha256\"\n\t\"encoding/hex\"\n\t\"strconv\"\n\t\"strings\"\n\t\"time\"\n)\n\n" + snippet(t, "go")
	harness := `package main

import (
	"fmt"
	"io"
	"os"
	"time"
)

func main() {
	body, err := io.ReadAll(os.Stdin)
	if err != nil {
		panic(err)
	}
	fmt.Println(verify([]byte(os.Args[1]), os.Args[2], body, 5*time.Minute))
}
`
	require.NoError(t, os.WriteFile(filepath.Join(dir, "verify.go"), []byte(verify), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte(harness), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module verify\n\ngo 1.24\n"), 0o600))
	bin := filepath.Join(dir, "verify")
	ctx, cancel := context.WithTimeout(t.Context(), buildTimeout)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	build.Dir = dir
	out, err := build.CombinedOutput()
	require.NoError(t, err, "the runbook's Go snippet does not compile:\n%s\n%s", out, verify)

	for _, c := range signatureCases() {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, c.secret, c.header)
			cmd.Stdin = strings.NewReader(c.body)
			out, err := cmd.Output()
			require.NoError(t, err)
			require.Equal(t, strconv.FormatBool(c.want), strings.TrimSpace(string(out)))
		})
	}
}
