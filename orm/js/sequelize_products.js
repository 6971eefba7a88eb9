// The shop's product list (catalog/selectors.py:product_list with no
// filter: listed products, newest first, one page) through Sequelize 6,
// printing every statement Sequelize sends. Read-only.
//
//   DATABASE_URL=postgres://... node sequelize_products.js
"use strict";

const { DataTypes, Op, Sequelize } = require("sequelize");
const { connectionConfig, pageSize, report } = require("./db");

const db = connectionConfig();
const sequelize = new Sequelize(db.database, db.user, db.password, {
  host: db.host,
  port: db.port,
  dialect: "postgres",
  dialectOptions: { ssl: db.ssl },
  pool: { max: db.max, acquire: db.connectionTimeoutMillis },
  // Each statement as sent, with its bind parameters if it has any.
  logging: (sql) => console.log(`${sql.replace(/^Executing \(\w+\): /, "")}\n`),
  logQueryParameters: true,
});

// The shop's tables as Django's migrations made them: snake_case columns,
// no Sequelize timestamps, and only the columns the list reads.
const common = { underscored: true, timestamps: false };

const Category = sequelize.define(
  "Category",
  {
    id: { type: DataTypes.BIGINT, primaryKey: true },
    slug: DataTypes.STRING(140),
  },
  { ...common, tableName: "catalog_category" },
);

const Product = sequelize.define(
  "Product",
  {
    id: { type: DataTypes.BIGINT, primaryKey: true },
    name: DataTypes.STRING(200),
    slug: DataTypes.STRING(220),
    isActive: DataTypes.BOOLEAN,
    createdAt: DataTypes.DATE,
    minPrice: DataTypes.DECIMAL(12, 2),
  },
  { ...common, tableName: "catalog_product" },
);

const ProductVariant = sequelize.define(
  "ProductVariant",
  {
    id: { type: DataTypes.BIGINT, primaryKey: true },
    isActive: DataTypes.BOOLEAN,
  },
  { ...common, tableName: "catalog_product_variant" },
);

const StockLevel = sequelize.define(
  "StockLevel",
  {
    id: { type: DataTypes.BIGINT, primaryKey: true },
    quantityOnHand: DataTypes.INTEGER,
    reserved: DataTypes.INTEGER,
  },
  { ...common, tableName: "catalog_stock_level" },
);

Product.belongsTo(Category, { as: "category", foreignKey: "category_id" });
Product.hasMany(ProductVariant, { as: "variants", foreignKey: "product_id" });
ProductVariant.hasMany(StockLevel, { as: "stockLevels", foreignKey: "variant_id" });

// --8<-- [start:query]
async function productList() {
  const products = await Product.findAll({
    // createdAt too, though not shown: with a LIMIT and a one-to-many
    // include, Sequelize pages the products in a subquery and sorts again
    // outside it, by columns the subquery must therefore return.
    attributes: ["id", "slug", "minPrice", "createdAt"],
    // Listed: on sale, with an active variant (catalog/models.py:LISTED).
    where: { isActive: true, minPrice: { [Op.ne]: null } },
    include: [
      { model: Category, as: "category", attributes: ["slug"] },
      {
        model: ProductVariant,
        as: "variants",
        attributes: ["id"],
        where: { isActive: true },
        // A LEFT JOIN: a product whose variants have no stock row still lists.
        required: false,
        include: [
          {
            model: StockLevel,
            as: "stockLevels",
            attributes: ["quantityOnHand", "reserved"],
          },
        ],
      },
    ],
    order: [
      ["createdAt", "DESC"],
      ["id", "DESC"],
    ],
    limit: pageSize(),
  });
  // `available` is summed here, in JavaScript: Django asks the database
  // for it in the same statement, as a correlated subquery.
  return products.map((product) => ({
    id: String(product.id),
    slug: product.slug,
    category_slug: product.category.slug,
    min_price: product.minPrice,
    available: product.variants
      .flatMap((variant) => variant.stockLevels)
      .reduce((sum, level) => sum + level.quantityOnHand - level.reserved, 0),
  }));
}
// --8<-- [end:query]

productList()
  .then(report)
  .finally(() => sequelize.close())
  .catch((error) => {
    console.error(`sequelize_products.js: ${error.message}`);
    process.exitCode = 1;
  });
