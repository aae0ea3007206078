// compose-lint validates docker-compose.yml against the Compose specification with compose-go, the
// loader `docker compose config` itself uses; this project's machines have no Docker engine or plugin.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: compose-lint <docker-compose.yml>")
		os.Exit(2)
	}
	// Every profile, so optional services are validated too.
	opts, err := cli.NewProjectOptions([]string{os.Args[1]}, cli.WithName("agentlab"), cli.WithProfiles([]string{"*"}))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("%s is valid: services %v\n", os.Args[1], project.ServiceNames())
}
