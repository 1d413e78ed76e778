package actors

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/troupe-go/troupe/internal/leaktest"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		runCrashChild(dir)
	}
	goleak.VerifyTestMain(m, leaktest.ProtoactorOptions()...)
}
