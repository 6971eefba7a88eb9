// Where the Prisma CLI finds the schema. No datasource URL: the only command
// run here is `prisma generate`, which needs none; the script connects
// through its driver adapter with DATABASE_URL.
import { defineConfig } from "prisma/config";

export default defineConfig({
  schema: "prisma/schema.prisma",
});
