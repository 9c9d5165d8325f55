"""Amazon ECS: the task-definition rewrite (`rewrite`, pure, on `spec/`) and its AWS calls (`aws`)."""
