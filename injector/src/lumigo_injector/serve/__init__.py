"""What the Helm chart runs (`lumigo-injector serve`): webhook, operator and their helpers."""
