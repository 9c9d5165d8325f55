"""Amazon ECS: the task-definition rewrite and the few AWS calls around it."""
