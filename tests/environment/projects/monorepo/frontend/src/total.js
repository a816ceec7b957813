module.exports = { total: (items) => items.reduce((sum, item) => sum + item.cents, 0) };
