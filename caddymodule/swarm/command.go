package swarm

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "swarm",
		Usage: "health [--timeout <duration>] <url> | doctor [--admin <addr>] [--json] [<service>...]",
		Short: "Commands for running the edge in Docker Swarm",
		Long: `
Subcommands for running the edge in Docker Swarm:

  health <url>   exits 0 when the URL answers 2xx: the HEALTHCHECK for
                 images with no curl (FROM scratch)
  doctor         checks DNS, tasks, machine ID, sockets and clock from
                 inside an edge container; exit 0 ok, 1 warning, 2 failure`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.AddCommand(newHealthCommand(), newDoctorCommand())
		},
	})
}

// newHealthCommand is `caddy swarm health`.
func newHealthCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "health [--timeout <duration>] <url>",
		Short:   "Exits 0 when the URL answers 2xx, 1 otherwise",
		Example: `HEALTHCHECK CMD ["caddy", "swarm", "health", "http://127.0.0.1:2019/config/"]`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.SilenceUsage = true
			timeout, err := cmd.Flags().GetDuration("timeout")
			if err != nil {
				return err
			}
			return checkHealth(cmd.Context(), http.DefaultTransport, args[0], timeout)
		},
	}
	cmd.Flags().Duration("timeout", 3*time.Second, "how long to wait for the answer")
	return cmd
}

// checkHealth GETs url and returns nil for a 2xx answer. Redirects are not
// followed: a health URL that redirects is misconfigured.
func checkHealth(ctx context.Context, transport http.RoundTripper, url string, timeout time.Duration) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("health URL %q: %v", url, err)
	}
	resp, err := transport.RoundTrip(req)
	if err != nil {
		return fmt.Errorf("health check %s: %v", url, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("health check %s: %s", url, resp.Status)
	}
	return nil
}
