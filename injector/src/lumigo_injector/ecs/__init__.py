"""Amazon ECS: the task-definition rewrite (`rewrite`, pure, on `spec/`) and AWS calls (`aws`)."""
