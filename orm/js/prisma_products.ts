// The shop's product list (catalog/selectors.py:product_list with no
// filter: listed products, newest first, one page) through Prisma 7,
// printing every statement Prisma sends. Read-only.
//
//   npx prisma generate   (once: writes the client to generated/prisma)
//   DATABASE_URL=postgres://... npx tsx prisma_products.ts
//
// No Rust query engine: the generated client compiles queries to SQL in
// TypeScript and runs them through node-postgres (@prisma/adapter-pg).
import { PrismaPg } from "@prisma/adapter-pg";

import { connectionConfig, pageSize, report } from "./db";
import { PrismaClient } from "./generated/prisma/client";

const adapter = new PrismaPg(connectionConfig());
const prisma = new PrismaClient({
  adapter,
  log: [{ emit: "event", level: "query" }],
});
// Each statement as sent, with its parameters (Prisma always binds them).
prisma.$on("query", (event) => {
  console.log(`${event.query};\n-- params: ${event.params}\n`);
});

// --8<-- [start:query]
async function productList() {
  const products = await prisma.product.findMany({
    // Listed: on sale, with an active variant (catalog/models.py:LISTED).
    where: { isActive: true, minPrice: { not: null } },
    orderBy: [{ createdAt: "desc" }, { id: "desc" }],
    take: pageSize(),
    select: {
      id: true,
      slug: true,
      minPrice: true,
      category: { select: { slug: true } },
      variants: {
        where: { isActive: true },
        select: { stockLevels: { select: { quantityOnHand: true, reserved: true } } },
      },
    },
  });
  // `available` is summed here, in TypeScript: Django asks the database
  // for it in the same statement, as a correlated subquery.
  return products.map((product) => ({
    id: String(product.id),
    slug: product.slug,
    category_slug: product.category.slug,
    min_price: product.minPrice === null ? null : product.minPrice.toFixed(2),
    available: product.variants
      .flatMap((variant) => variant.stockLevels)
      .reduce((sum, level) => sum + level.quantityOnHand - level.reserved, 0),
  }));
}
// --8<-- [end:query]

productList()
  .then(report)
  .finally(() => prisma.$disconnect())
  .catch((error) => {
    console.error(`prisma_products.ts: ${error.message}`);
    process.exitCode = 1;
  });
