package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/netfeat/netfeat/service"
)

func newServeCmd() *cobra.Command {
	var (
		cfgPath    string
		httpListen string
		natsListen string
		dataDir    string
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the netfeat service (collectors, normalizer, feature store, inference)",
		Long: `Run the netfeat service until SIGINT or SIGTERM, then drain and stop.

Without -c, the service runs on embedded defaults: an embedded NATS server on
127.0.0.1:4222 with JetStream, the HTTP API on 127.0.0.1:9464 and data in ./data.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfigOrDefault(cfgPath)
			if err != nil {
				return err
			}
			overrides := func(cfg *service.Config) {
				if cmd.Flags().Changed("http-listen") {
					cfg.HTTP.Listen = httpListen
				}
				if cmd.Flags().Changed("nats-listen") {
					cfg.NATS.Listen = natsListen
				}
				if cmd.Flags().Changed("data-dir") {
					cfg.DataDir = dataDir
				}
			}
			overrides(cfg)
			log, err := loggerFor(cmd, cfg)
			if err != nil {
				return err
			}
			slog.SetDefault(log)
			if hint := noDevicesHint(cfg, cfgPath); hint != "" {
				fmt.Fprintln(cmd.ErrOrStderr(), hint)
			}
			reg := service.NewRegistry()
			svc, err := service.New(cfg, reg, log)
			if err != nil {
				return err
			}
			if cfg.Learning.Enabled && cfg.Learning.Gate.Twin != nil {
				g, err := newTwinGate(cfg, svc.Inference(), log.With("component", "learning"))
				if err != nil {
					return err
				}
				if err := svc.SetLearningGate(g); err != nil {
					return err
				}
			}
			// SIGHUP reloads the normalizer's vendor profiles, the
			// configuration file's targets and the targets file
			// (targets_file).
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			go func() {
				for range hup {
					if n := svc.Normalizer(); n != nil {
						if err := n.Reload(); err != nil {
							log.Error("profile reload failed; keeping the previous profiles", "err", err)
						} else {
							log.Info("profiles reloaded")
						}
					}
					if cfgPath != "" {
						restart, err := svc.ReloadConfigFile(cfgPath, overrides)
						if err != nil {
							log.Error("configuration reload failed; keeping the running targets", "file", cfgPath, "err", err)
						}
						if len(restart) > 0 {
							log.Warn("configuration changes that take effect only at a restart", "file", cfgPath, "keys", strings.Join(restart, ","))
						}
					}
					if err := svc.ReloadTargets(); err != nil {
						log.Error("targets reload failed; keeping the running targets", "err", err)
					}
				}
			}()
			if err := svc.Run(cmd.Context()); err != nil {
				return &exitError{code: 1, err: err}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&cfgPath, "config", "c", "", "configuration file (YAML); embedded defaults when empty")
	cmd.Flags().StringVar(&httpListen, "http-listen", "", "HTTP API address (default from config, 127.0.0.1:9464)")
	cmd.Flags().StringVar(&natsListen, "nats-listen", "", "embedded NATS server address (default from config, 127.0.0.1:4222)")
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "data directory (default from config, ./data)")
	return cmd
}

// loadConfigOrDefault loads and validates path, or returns the defaults when
// path is empty.
func loadConfigOrDefault(path string) (*service.Config, error) {
	if path == "" {
		cfg := service.DefaultConfig()
		return &cfg, nil
	}
	cfg, err := service.LoadConfig(path)
	if err != nil {
		var ce service.ConfigErrors
		if errors.As(err, &ce) {
			return nil, fmt.Errorf("invalid configuration (%d problems):\n%w", len(ce), err)
		}
		return nil, err
	}
	return cfg, nil
}

// loggerFor builds the logger from the configuration and the global flags,
// which win.
func loggerFor(cmd *cobra.Command, cfg *service.Config) (*slog.Logger, error) {
	level, format := cfg.Log.Level, cfg.Log.Format
	if v, _ := cmd.Flags().GetString("log-level"); v != "" {
		level = v
	}
	if v, _ := cmd.Flags().GetString("log-format"); v != "" {
		format = v
	}
	return service.NewLogger(os.Stderr, level, format)
}

// noDevicesHint says how to add a device when cfg collects from none (no
// SNMP or gNMI target, no trap listener) and is not a hub, which collects
// nothing by design; "" otherwise.
func noDevicesHint(cfg *service.Config, path string) string {
	if cfg.Role == service.RoleHub || len(cfg.SNMP.Targets) > 0 || cfg.SNMP.TargetsFile != "" ||
		cfg.SNMP.TrapListen != "" || len(cfg.GNMI.Targets) > 0 {
		return ""
	}
	where := "a configuration file"
	if path != "" {
		where = path
	}
	return "netfeat serve: no devices are configured, so nothing will be collected.\n" +
		"  Add snmp.targets or gnmi.targets to " + where + " (examples/netfeat.yaml shows both)\n" +
		"  and run netfeat serve -c FILE; netfeat config check FILE checks it first.\n" +
		"  To try netfeat with simulated devices instead: netfeat demo"
}
