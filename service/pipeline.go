package service

// buildPipeline adds the data-path stages (collectors → normalizer → store
// → inference) between NATS and HTTP.
func (s *Service) buildPipeline() error { return nil }

// mountAPIs mounts the stages' HTTP APIs.
func (s *Service) mountAPIs() {}
